"""The access log of gunicorn.conf.py leaves out load balancers' successful health
checks, and keeps failing ones and every other request."""

from __future__ import annotations

import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config

from tests.helpers.settings import PROJECT_ROOT


def test_successful_probes_are_left_out_of_the_access_log(tmp_path: Path) -> None:
    settings = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    config = Config()
    log_file = tmp_path / "access.log"
    config.set("accesslog", str(log_file))
    config.set("access_log_format", settings["access_log_format"])
    config.set("logger_class", settings["logger_class"])
    logger = config.logger_class(config)

    for path, status in [
        ("/healthz", "200 OK"),
        ("/readyz", "200 OK"),
        ("/readyz", "503 SERVICE UNAVAILABLE"),
        ("/ifbyphone/verify_caller", "200 OK"),
    ]:
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": path,
            "PATH_INFO": path,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "10.0.0.9",
        }
        response = SimpleNamespace(status=status, sent=2, headers=[("X-Request-ID", "r1")])
        logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))

    lines = log_file.read_text().splitlines()
    assert [line.split('"')[1] for line in lines] == [
        "GET /readyz",
        "GET /ifbyphone/verify_caller",
    ]
    assert lines[0].split('"')[2].split()[0] == "503"
