"""gunicorn.conf.py's logger class, on what gunicorn hands it: an access line
and a failure of its own, each one line, with no query string in it.
(tests/hardening/test_http_bytes.py sends the same bytes to a real gunicorn.)"""

from __future__ import annotations

import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.errors import InvalidHeader, NoMoreData

from tests.helpers.settings import PROJECT_ROOT

KEY = "Zq7-logger-key-4f1e"


def glue_logger(tmp_path: Path) -> Logger:
    settings = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    config.set("errorlog", str(tmp_path / "error.log"))
    config.set("access_log_format", settings["access_log_format"])
    config.set("logger_class", settings["logger_class"])
    logger: Logger = config.logger_class(config)
    return logger


def test_an_access_line_escapes_the_decoded_path(tmp_path: Path) -> None:
    logger = glue_logger(tmp_path)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/a%0aforged%0d%85?key={KEY}",
        "PATH_INFO": "/a\nforged\r\x85",  # decoded, byte by byte (latin-1)
        "QUERY_STRING": f"key={KEY}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.9",
    }
    response = SimpleNamespace(status="404 NOT FOUND", sent=9, headers=[("X-Request-ID", "r1")])
    logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))

    assert (tmp_path / "access.log").read_text() == (
        '10.0.0.9 "GET /a\\nforged\\r\\x85" 404 9 3ms rid=r1\n'
    )


def test_gunicorns_own_failure_is_one_line_without_the_query(tmp_path: Path) -> None:
    logger = glue_logger(tmp_path)
    try:
        raise ValueError(f"cannot read /ifbyphone/x?key={KEY}\nforged")
    except ValueError:
        # What gunicorn's worker logs when a request fails outside the app.
        logger.exception("Error handling request %s %s", "GET", f"/ifbyphone/x?key={KEY}")
    logger.warning(
        "Invalid request from ip=10.0.0.9: Invalid HTTP request line: %r",
        f"GET /ifbyphone/x?key={KEY}&pin=97531\xff HTTP/1.1",
    )

    lines = (tmp_path / "error.log").read_text().split("\n")
    assert lines[-1] == ""
    failure, refusal = lines[:-1]
    assert (
        "[ERROR] Error handling request GET /ifbyphone/x?<redacted>"
        "\\nTraceback (most recent call last):\\n" in failure
    )
    assert "\\nValueError: cannot read /ifbyphone/x?<redacted>\\nforged" in failure
    assert refusal.endswith(
        "[WARNING] Invalid request from ip=10.0.0.9: Invalid HTTP request line: "
        "'GET /ifbyphone/x?<redacted> HTTP/1.1'"
    )
    assert KEY not in "".join(lines) and "97531" not in "".join(lines)


BASIC = "QWxhZGRpbjpvcGVuIHNlc2FtZQ"  # distinctive: in no time or id the log holds


def test_a_credential_header_gunicorn_quotes_is_redacted_colon_or_not(tmp_path: Path) -> None:
    logger = glue_logger(tmp_path)
    # What gunicorn's worker logs of the header lines its parser refuses: a line
    # with no colon is quoted whole (InvalidHeader), a buffer cut short as bytes.
    refused = [
        str(InvalidHeader(f"Authorization Basic {BASIC}")),
        str(InvalidHeader(f"Proxy-Authorization:Basic \x85{BASIC}")),
        str(InvalidHeader(f"Cookie it's {BASIC}")),  # repr() quotes it in "
        str(NoMoreData(f"GET / HTTP/1.1\r\nAuthorization: \x85{BASIC}\r\nHost: a".encode())),
    ]
    for error in refused:
        logger.warning("Invalid request from ip=10.0.0.9: %s", error)

    lines = (tmp_path / "error.log").read_text().split("\n")[:-1]
    assert [line.split("[WARNING] ", 1)[1] for line in lines] == [
        "Invalid request from ip=10.0.0.9: Invalid HTTP Header: 'Authorization <redacted>'",
        "Invalid request from ip=10.0.0.9: Invalid HTTP Header: 'Proxy-Authorization:<redacted>'",
        'Invalid request from ip=10.0.0.9: Invalid HTTP Header: "Cookie <redacted>"',
        "Invalid request from ip=10.0.0.9: No more data after: "
        "b'GET / HTTP/1.1\\r\\nAuthorization: <redacted>\\r\\nHost: a'",
    ]
