"""Real gunicorn with the project's gunicorn.conf.py: the access log names each
request, but never its query string (the shared secret, answers sent by GET)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from app.db import make_engine, upgrade
from tests.conftest import PROJECT_ROOT, TEST_SECRETS

GUNICORN = Path(sys.executable).parent / "gunicorn"
SECRET = "Zq7-gunicorn-secret-4f1e"  # distinctive: found nowhere else in the output
PIN = "97531"


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


def wait_until_up(
    process: subprocess.Popen[bytes], base: str, output: Path, seconds: float = 15
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited before serving:\n{tail(output)}")
        try:
            get(f"{base}/")  # any HTTP answer (a 404 too) means it serves
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer within {seconds} s:\n{tail(output)}")


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_access_log_has_no_query_strings(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/g.db"
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()

    env = {
        **os.environ,
        **{f"GLUE_{key}": value for key, value in TEST_SECRETS.items()},  # none generated
        "GLUE_IFBYPHONE_SECRET": SECRET,
        "GLUE_DATABASE_URL": database_url,
        "WEB_CONCURRENCY": "1",
        "PYTHONUNBUFFERED": "1",
        # gunicorn >= 25.1 opens a control socket, by default in ~/.gunicorn/,
        # taking it over from any other gunicorn there (`make run`): keep ours here.
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    output = tmp_path / "gunicorn.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(process, base, output)
            query = urlencode({"key": SECRET, "session_id": "x", "account": "1001", "pin": PIN})
            status, headers = get(f"{base}/ifbyphone/verify_caller?{query}")
            assert status == 200
            request_id = headers["X-Request-ID"]
            process.send_signal(signal.SIGTERM)  # graceful: flushes the logs
            process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
    log = output.read_text(errors="replace")

    lines = [line for line in log.splitlines() if "/ifbyphone/verify_caller" in line]
    assert any(
        re.search(
            r'"GET /ifbyphone/verify_caller" 200 \d+ \d+ms rid=' + re.escape(request_id), line
        )
        for line in lines
    ), log
    assert SECRET not in log
    assert PIN not in log
    assert "key=" not in log
