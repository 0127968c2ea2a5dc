"""Real gunicorn with the project's gunicorn.conf.py: the access log names each
request, but never its query string (the shared secret, answers sent by GET)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

from app.db import make_engine, upgrade
from tests.helpers.servers import get, gunicorn

SECRET = "Zq7-gunicorn-secret-4f1e"  # distinctive: found nowhere else in the output
PIN = "97531"


def test_access_log_has_no_query_strings(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/g.db"
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()

    with gunicorn(database_url, tmp_path, env={"GLUE_IFBYPHONE_SECRET": SECRET}) as server:
        query = urlencode({"key": SECRET, "session_id": "x", "account": "1001", "pin": PIN})
        status, headers = get(f"{server.base}/ifbyphone/verify_caller?{query}")
        assert status == 200
        request_id = headers["X-Request-ID"]
    log = server.log()  # read once stopped: SIGTERM flushed it

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
