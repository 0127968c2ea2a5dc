"""gunicorn servers (Glue and the floor) and wrk runs against them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import GUNICORN_CONF, LUA_SCRIPT, PROJECT_ROOT, VENV_BIN

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A gunicorn serving `target` (wsgi:app or bench.floor:app) with the bench's settings."""

    def __init__(
        self, name: str, target: str, env: dict[str, str], logdir: Path, ports: int = 1
    ) -> None:
        self.name = name
        self.target = target
        self.env = env
        # Several ports, one per wrk run: gunicorn's sync workers close every
        # connection, and tens of thousands of TIME_WAIT entries on one port pair
        # slow down the next run's connects. A fresh port starts clean.
        self.ports = [free_port() for _ in range(ports)]
        self._next = 0
        self.base = f"http://127.0.0.1:{self.ports[0]}"
        self.log_path = logdir / f"gunicorn-{name.replace(' ', '-')}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        command = [
            str(VENV_BIN / "gunicorn"),
            "-c",
            str(GUNICORN_CONF),
            *(arg for port in self.ports for arg in ("--bind", f"127.0.0.1:{port}")),
            self.target,
        ]
        with self.log_path.open("ab") as sink:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/bench-ping", timeout=2):
                    pass
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer means it serves
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name}: gunicorn did not answer within 30 s:\n{self.log_tail()}")

    def next_base(self) -> str:
        """The URL of the next fresh port (round robin once all were used)."""
        port = self.ports[self._next % len(self.ports)]
        self._next += 1
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # graceful stop of this master and its workers
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def worker_cpu_seconds(self) -> float:
        """User and system CPU time of this server's gunicorn workers so far (its
        master's children, from /proc); the master's own is not the app's."""
        if self.process is None:
            return 0.0
        master, total = self.process.pid, 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # The command name, in parentheses, may hold spaces: split after it.
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[1]) == master:  # ppid; utime and stime are fields 14 and 15
                total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """WARNING/ERROR lines the app logged (refusals, exceptions) so far."""
        if not self.log_path.exists():
            return []
        return [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if " WARNING " in line or " ERROR " in line or " CRITICAL " in line
        ]

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, bytes]:
        data = "&".join(f"{k}={urllib.parse.quote_plus(v)}" for k, v in fields.items()).encode()
        request = urllib.request.Request(
            f"{self.base}{path}",
            data=data,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int]
    paced: dict[str, float] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class LoadShape:
    threads: int
    connections: int
    duration: float  # seconds
    timeout: float = 10.0


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian's package)")
    return path


def run_wrk(
    base: str,
    shape: LoadShape,
    scenario: str,
    args: dict[str, Any],
    rate: float = 0.0,
    timings: Path | None = None,
) -> WrkResult:
    """One wrk run of `scenario` against `base`; rate > 0 paces it (one connection per
    thread), and `timings` then receives every request's due time and latency
    (bench/lua/glue.lua)."""
    threads, connections = shape.threads, shape.connections
    if rate > 0:
        connections = threads  # the script's pacing tracks one request per thread at a time
    script_args = {
        "scenario": scenario,
        "threads": threads,
        "rate": rate,
        "duration_s": shape.duration,
        **args,
    }
    command = [
        wrk_path(),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{shape.duration:g}s",
        "--timeout",
        f"{shape.timeout:g}s",
        "-s",
        str(LUA_SCRIPT),
        base,
        "--",
        *(f"{k}={v}" for k, v in script_args.items()),
    ]
    env = {**os.environ, "BENCH_PACED": "1" if rate > 0 else "0"}
    if timings is not None:
        env["BENCH_TIMINGS"] = str(timings)
    completed = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=shape.duration + 120
    )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors={k: int(v) for k, v in data["errors"].items()},
        paced={
            k.replace("_us", "_ms"): v / 1000 if k.endswith("_us") else v
            for k, v in data["paced"].items()
        }
        if "paced" in data
        else None,
        raw=data,
    )
