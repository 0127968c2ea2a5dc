"""Real gunicorn servers for tests (`gunicorn wsgi:app`), and a client that
spreads a call's requests over several of them like a round-robin load balancer."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from tests.helpers.settings import PROJECT_ROOT, TEST_SECRETS

GUNICORN = Path(sys.executable).parent / "gunicorn"
HUEY_CONSUMER = Path(sys.executable).parent / "huey_consumer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> tuple[int, dict[str, str]]:
    """Status and headers of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    output: Path  # gunicorn's and the app's log (stdout and stderr)
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> None:
        """Graceful (SIGTERM flushes the logs); killed if it takes too long."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@contextmanager
def gunicorn(
    database_url: str,
    workdir: Path,
    name: str = "glue",
    env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Iterator[Server]:
    """A gunicorn serving `wsgi:app` on a free port with the tests' secrets,
    against `database_url` (migrated already); stopped on leaving."""
    full_env = {
        **os.environ,
        **{f"GLUE_{key}": value for key, value in TEST_SECRETS.items()},  # none generated
        "GLUE_DATABASE_URL": database_url,
        "WEB_CONCURRENCY": str(workers),
        "PYTHONUNBUFFERED": "1",
        # gunicorn >= 25.1 may open a control socket, by default in ~/.gunicorn/,
        # taking it over from any other gunicorn there (`make run`): keep ours here.
        "XDG_RUNTIME_DIR": str(workdir),
        # Its own metrics folder: /metrics counts this server's workers only.
        "GLUE_METRICS_DIR": str(workdir / f"{name}-metrics"),
        **(env or {}),
    }
    port = free_port()
    output = workdir / f"{name}.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", output, process)
    try:
        _wait_until_up(server)
        yield server
    finally:
        server.stop()


@contextmanager
def job_worker(
    database_url: str, workdir: Path, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """The job worker that places calls (`huey_consumer app.outbound.jobs.huey`, as
    the Procfile runs it), against `database_url`, until it says it has started;
    stopped on leaving. Its `base` is empty: it serves no HTTP."""
    full_env = {
        **os.environ,
        **{f"GLUE_{key}": value for key, value in TEST_SECRETS.items()},
        "GLUE_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        # huey_consumer, unlike gunicorn, does not look in its working folder
        # first: this checkout's `app`, not the one the virtualenv installed.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        ),
        **(env or {}),
    }
    output = workdir / "worker.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(HUEY_CONSUMER), "app.outbound.jobs.huey", "--workers", "1"],
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    worker = Server("", output, process)
    try:
        deadline = time.monotonic() + 20
        while "consumer started" not in worker.log():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the job worker did not start:\n{tail(output)}")
            time.sleep(0.2)
        yield worker
    finally:
        worker.stop()


def _wait_until_up(server: Server, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gunicorn exited before serving:\n{tail(server.output)}")
        try:
            get(f"{server.base}/")  # any HTTP answer (a 404 too) means it serves
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer within {seconds} s:\n{tail(server.output)}")


@dataclass
class Reply:
    """An HTTP answer, read like Flask's test response."""

    status_code: int
    data: bytes
    headers: Mapping[str, str]
    server: str  # which base URL answered
    seconds: float  # wall time of the request

    @property
    def mimetype(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()


@dataclass
class Balancer:
    """Sends each request to the next server in turn, as a round-robin load
    balancer in front of several Glue hosts would. Quacks like FlaskClient for
    the tests' call drivers (`open`, `get`, `post`). Not thread-safe: one per caller."""

    bases: tuple[str, ...]
    replies: list[Reply] = field(default_factory=list)
    timeout: float = 30

    def __post_init__(self) -> None:
        self._next = itertools.cycle(self.bases)

    def open(
        self,
        path: str,
        method: str = "GET",
        query_string: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        if query_string:
            path += ("&" if "?" in path else "?") + urlencode(query_string)
        base = next(self._next)
        started = time.monotonic()
        response = requests.request(
            method, base + path, data=data, headers=dict(headers or {}), timeout=self.timeout
        )
        reply = Reply(
            response.status_code,
            response.content,
            response.headers,
            base,
            time.monotonic() - started,
        )
        self.replies.append(reply)
        return reply

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.open(path, method="GET", **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.open(path, method="POST", **kwargs)
