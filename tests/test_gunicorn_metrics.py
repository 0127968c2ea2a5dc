"""/metrics under real gunicorn (gunicorn.conf.py) with two workers and the job
worker: each process counts into the host's folder, and whichever worker answers
a scrape reports them all; a restart drops the counts of the processes that
stopped, not those of the job worker still running."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from pytest_httpserver import HTTPServer
from sqlalchemy.orm import Session

from app.auth import tokens
from app.db import make_engine, upgrade
from app.metrics.files import clear_stopped
from tests.helpers.directory import add_user
from tests.helpers.metrics import METRICS_TOKEN, Samples, scrape
from tests.helpers.servers import Balancer, gunicorn, job_worker
from tests.helpers.web_client import ENDPOINT

REQUESTS = 120
ROUND = 24
HEALTHZ = {"route": "/healthz", "platform": "none", "status": "200"}


def migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/glue.db"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def writers(folder: Path) -> set[int]:
    """The processes whose counts are in the folder."""
    return {int(m[1]) for p in folder.glob("*.db") if (m := re.search(r"_(\d+)\.db$", p.name))}


def test_requests_spread_over_two_workers_are_all_counted_by_either(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    env = {"GLUE_METRICS_TOKEN": METRICS_TOKEN}
    with gunicorn(url, tmp_path, env=env, workers=2) as server:
        # Sent eight at once, in rounds, until both sync workers have served some
        # (which one accepts a connection is up to the kernel).
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while sent < REQUESTS or len(writers(tmp_path / "glue-metrics")) < 2:
                assert sent < 50 * REQUESTS, "one worker took every request"
                statuses = pool.map(
                    lambda _: requests.get(f"{server.base}/healthz", timeout=10).status_code,
                    range(ROUND),
                )
                assert list(statuses) == [200] * ROUND
                sent += ROUND
        assert len(writers(tmp_path / "glue-metrics")) == 2  # both workers, nobody else

        client = Balancer((server.base,))
        for _ in range(6):  # whichever worker answers a scrape reports them all
            samples = scrape(client)
            assert samples.get_value("glue_http_requests_total", **HEALTHZ) == sent
            labels = {"route": "/healthz", "platform": "none"}
            assert samples.get_value("glue_http_request_duration_seconds_count", **labels) == sent


def test_the_job_workers_calls_are_reported_and_survive_a_restart_of_the_web_server(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    url = migrated(tmp_path)
    engine = make_engine(url)
    with Session(engine) as session:
        add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
        add_user(session, "1002", "Grace Hopper", "1357", "+13125550102")
        api_token = tokens.create(session, "crm")
        session.commit()
    engine.dispose()
    httpserver.expect_request(ENDPOINT, method="POST").respond_with_json(
        {"status": "success", "callSid": "CA-worker-1"}
    )
    env = {
        "GLUE_METRICS_TOKEN": METRICS_TOKEN,
        "GLUE_METRICS_DIR": str(tmp_path / "glue-metrics"),  # the web server's, as one host
        "GLUE_QUEUE_PATH": str(tmp_path / "jobs.db"),
        "GLUE_CALL_PROVIDER": "didforsale",
        "GLUE_DIDFORSALE_API_URL": httpserver.url_for(ENDPOINT),
        "GLUE_DIDFORSALE_API_KEY": "dfs-key-Zq81",
        "GLUE_ORIGINATOR_NUMBER": "+13125550199",
        "GLUE_PUBLIC_URL": "https://glue.example.com",
    }
    placed = {"provider": "didforsale", "outcome": "accepted"}
    with job_worker(url, tmp_path, env=env) as worker:
        with gunicorn(url, tmp_path, env=env, workers=2) as server:
            client = Balancer((server.base,))
            response = requests.post(
                f"{server.base}/api/v1/calls",
                json={"user": "1001", "target": {"kind": "user", "value": "1002"}},
                headers={"Authorization": f"Bearer {api_token}"},
                timeout=30,
            )
            assert response.status_code == 202, response.text
            samples = wait_for(client, lambda s: s.get_value("glue_calls_placed_total", **placed))
            assert samples.get_value("glue_calls_placed_total", **placed) == 1
            assert len(httpserver.log) == 1
            assert samples.total("glue_http_requests_total", route="/api/v1/calls") == 1
        assert worker.process.pid in writers(tmp_path / "glue-metrics")

        with gunicorn(url, tmp_path, env=env, workers=2) as server:
            samples = scrape(Balancer((server.base,)))
            # The stopped workers' counts are gone; the running job worker's stay.
            assert samples.total("glue_http_requests_total", route="/api/v1/calls") == 0
            assert samples.get_value("glue_calls_placed_total", **placed) == 1


def wait_for(client: Balancer, reached: Callable[[Samples], float], seconds: float = 20) -> Samples:
    """Scrape until `reached(samples)` is true (the job worker runs on its own time)."""
    deadline = time.monotonic() + seconds
    while True:
        samples = scrape(client)
        if reached(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def test_clearing_keeps_the_files_of_running_processes(tmp_path: Path) -> None:
    stopped = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = int(stopped.stdout)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for name in (f"counter_{gone}.db", f"histogram_{gone}.db", f"counter_{running.pid}.db"):
            (tmp_path / name).write_bytes(b"")
        (tmp_path / "notes.txt").write_text("not a count")
        cleared = clear_stopped(tmp_path)
    finally:
        running.kill()
        running.wait()
    assert sorted(p.name for p in cleared) == [f"counter_{gone}.db", f"histogram_{gone}.db"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{running.pid}.db", "notes.txt"]
