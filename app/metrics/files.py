"""Where each process keeps its counts: prometheus_client's multiprocess mode.

Every process of a host (gunicorn's workers, the job worker, a development
server) writes its counts to files of its own in one folder (`use_metrics_dir`
in app/config.py); /metrics adds up every file there, so whichever worker
answers a scrape reports the whole host. A process that stopped leaves its
files, so totals never go down while the server runs; `clear_stopped` drops
them when gunicorn starts (counters then start afresh, which Prometheus reads
as a restart).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import CollectorRegistry

from app.config import use_metrics_dir

FOLDER = use_metrics_dir()
# Set here rather than left to prometheus_client's import, which chooses by the
# environment it finds then: whatever imported it first, counts go to FOLDER.
values.ValueClass = values.MultiProcessValue()

# counter_1234.db, histogram_1234.db, gauge_livesum_1234.db: the writer's pid.
_WRITER = re.compile(r"_(\d+)\.db$")


def host_registry(folder: Path = FOLDER) -> CollectorRegistry:
    """A registry that reads every process's counts in `folder` (one per scrape)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return registry


def clear_stopped(folder: Path = FOLDER) -> list[Path]:
    """Delete the files of processes no longer running (a server's earlier run);
    those of running ones (the job worker) stay. The files deleted."""
    cleared = []
    for path in folder.glob("*.db"):
        match = _WRITER.search(path.name)
        if match and not _running(int(match[1])):
            path.unlink(missing_ok=True)
            cleared.append(path)
    return cleared


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
