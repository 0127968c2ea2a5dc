"""Logs: a request id on every line, the call once known (text or JSON), never a PIN."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from app import create_app
from app.flows import engine
from app.logs import clear_bindings
from app.models import Call, CallAction, User
from app.outbound import jobs
from tests.helpers.directory import add_user
from tests.helpers.ifbyphone import the_call
from tests.helpers.settings import TEST_SECRETS

KEY = TEST_SECRETS["IFBYPHONE_SECRET"]


def test_a_full_call_logs_request_ids_and_no_pin_or_secret(
    client: FlaskClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    add_user(session, "1001", "Ada", "24682468", "+13125550101")
    caplog.set_level(logging.DEBUG)
    posts = [
        {"session_id": "s1", "account": "1001", "pin": "13571357"},  # wrong
        {"session_id": "s1", "account": "1001", "pin": "1357x"},  # malformed
        {"account": "1001", "pin": "97531975"},  # no session id
        {"session_id": "s2", "account": "1001", "pin": "24682468"},  # right
    ]
    for fields in posts:
        response = client.post(f"/ifbyphone/verify_caller?key={KEY}", data=fields)
        assert response.headers["X-Request-ID"]
    client.post("/ifbyphone/nope?key=" + KEY, data={"session_id": "s3", "pin": "86428642"})
    text = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert caplog.records, "the malformed requests must have been logged"
    for secret in ("13571357", "1357x", "97531975", "24682468", "86428642", KEY):
        assert secret not in text
    assert all(
        getattr(r, "request_id", "-") != "-"
        for r in caplog.records
        if r.name.startswith("app.hooks")
    )


def test_a_safe_incoming_request_id_is_kept_and_a_hostile_one_replaced(
    client: FlaskClient,
) -> None:
    kept = client.get("/ifbyphone/verify_caller", headers={"X-Request-ID": "lb-1234.abc"})
    assert kept.headers["X-Request-ID"] == "lb-1234.abc"
    hostile = client.get("/ifbyphone/verify_caller", headers={"X-Request-ID": "x y <script>"})
    assert hostile.headers["X-Request-ID"] != "x y <script>"
    assert len(hostile.headers["X-Request-ID"]) == 32


# --- formats and the call a line is about ----------------------------------------


@pytest.fixture
def json_app(app: Flask, app_config: dict[str, object], tmp_path: Path) -> Iterator[Flask]:
    """An app logging JSON, made after `app` (the logger is the process's: last made wins)."""
    made = create_app({**app_config, "LOG_FORMAT": "json"}, instance_path=str(tmp_path / "j"))
    yield made
    made.extensions["glue.engine"].dispose()


def capture(app: Flask) -> io.StringIO:
    """What the app's own log handler writes, and a line logged after each request."""
    sink = io.StringIO()
    handler = logging.getLogger("app").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(sink)

    @app.after_request
    def note(response: Response) -> Response:
        logging.getLogger("app.test").info("request done: %s", request.path)
        return response

    return sink


def json_lines(sink: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.getvalue().splitlines()]


def done(lines: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """The after-request line of the request to `path`."""
    found = [line for line in lines if line["message"] == f"request done: {path}"]
    assert len(found) == 1, lines
    return found[0]


def test_json_lines_carry_the_call_once_the_runner_knows_it_and_no_pin(
    json_app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(session, "1001", "Ada", "24682468", "+13125550101")
    sink = capture(json_app)
    client = json_app.test_client()
    path = f"/ifbyphone/verify_caller?key={KEY}"
    client.post(path, data={"session_id": "j1", "account": "1001", "pin": "13571357"})
    call_id = the_call(session, "j1").id

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine broke")

    monkeypatch.setattr(engine, "decide", broken)
    client.post(path, data={"session_id": "j1", "account": "1001", "pin": "97539753"})
    client.get("/healthz", headers={"X-Request-ID": "probe-1"})

    lines = json_lines(sink)
    assert {"time", "level", "logger", "message", "request_id", "call_id"} <= lines[0].keys()
    turns = [line for line in lines if line["message"] == "request done: /ifbyphone/verify_caller"]
    assert [line["call_id"] for line in turns] == [call_id, call_id]
    assert all(len(line["request_id"]) == 32 for line in turns)
    failed = next(line for line in lines if line["level"] == "ERROR")
    assert failed["logger"] == "app.flows.runner" and failed["call_id"] == call_id
    assert "RuntimeError: engine broke" in failed["exception"]
    datetime.fromisoformat(failed["time"])
    # The next request is about no call: nothing carries over.
    probe = done(lines, "/healthz")
    assert probe["request_id"] == "probe-1" and probe["call_id"] is None
    text = sink.getvalue()
    for secret in ("13571357", "97539753", "24682468", KEY):
        assert secret not in text


def ada_calls_the_originator(session: Session, via: str, provider: str) -> CallAction:
    add_user(session, "1001", "Ada", "24682468", "+13125550101")
    action = CallAction(
        user_id=session.scalars(select(User.id)).one(),
        via=via,
        purpose="connect",
        target_kind="originator",
        from_number="+13125550101",
        provider=provider,
    )
    session.add(action)
    session.commit()
    return action


def test_a_status_callback_binds_its_call_and_action(json_app: Flask, session: Session) -> None:
    action = ada_calls_the_originator(session, via="web", provider="didforsale")
    sink = capture(json_app)
    response = json_app.test_client().post(
        "/didml/status",
        query_string={"key": TEST_SECRETS["DIDML_SECRET"], "action": str(action.id)},
        data={"callSid": "CA-log-1", "CallStatus": "ringing"},
    )
    assert response.status_code == 204
    session.commit()
    call = session.scalars(select(Call).where(Call.platform_call_id == "CA-log-1")).one()
    line = done(json_lines(sink), "/didml/status")
    assert (line["call_id"], line["action_id"]) == (call.id, action.id)


def test_a_job_binds_the_call_action_it_places(app: Flask, session: Session) -> None:
    # The job logs an error and gives up.
    action = ada_calls_the_originator(session, via="api", provider="no-such-provider")
    sink = capture(app)
    try:
        with app.app_context():
            jobs.place_call(action.id)
    finally:
        clear_bindings()
    [line] = [line for line in sink.getvalue().splitlines() if "not usable" in line]
    # The text format: time, level, [request id, call, action], logger, message.
    assert re.fullmatch(
        rf"\S+ \S+ ERROR \[- action={action.id}\] app\.outbound\.jobs: call action {action.id}: .*",
        line,
    ), line


def test_text_lines_name_the_call_after_the_request_id(app: Flask, session: Session) -> None:
    add_user(session, "1001", "Ada", "24682468", "+13125550101")
    sink = capture(app)
    app.test_client().post(
        f"/ifbyphone/verify_caller?key={KEY}",
        data={"session_id": "t1", "account": "1001", "pin": "24682468"},
        headers={"X-Request-ID": "rid-7"},
    )
    call_id = the_call(session, "t1").id
    assert (
        f"INFO [rid-7 call={call_id}] app.test: request done: /ifbyphone/verify_caller"
        in sink.getvalue()
    )


def test_an_unknown_log_format_stops_start_up(
    app_config: dict[str, object], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="GLUE_LOG_FORMAT must be one of text, json"):
        create_app({**app_config, "LOG_FORMAT": "xml"}, instance_path=str(tmp_path / "x"))


# --- one line per event, whatever a request put in it -------------------------------

# A path whose decoded form breaks lines: LF (and a forged line after it), CR,
# NEL (U+0085), U+2028, an escape sequence that would recolour a terminal.
HOSTILE_PATH = "/boom/a%0a2026-01-01 00:00:00,000 INFO [-] app: forged%0dB%C2%85C%E2%80%A8D%1b[0m"


def failing_route(app: Flask) -> None:
    """A request under /boom/ fails as in production: logged by Flask, a 500."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # TESTING would raise it in the test

    @app.before_request
    def boom() -> None:
        if request.path.startswith("/boom/"):
            raise RuntimeError(f"cannot serve {request.path[6:]}")


def test_flasks_error_line_for_a_hostile_path_is_one_text_line(app: Flask) -> None:
    failing_route(app)
    sink = capture(app)
    response = app.test_client().get(HOSTILE_PATH)
    assert response.status_code == 500

    [error] = [line for line in sink.getvalue().splitlines() if " ERROR " in line]
    assert sink.getvalue().count("\n") == len(sink.getvalue().splitlines())  # no raw breaker
    assert "app: Exception on /boom/a\\n2026-01-01 00:00:00,000 INFO [-] app: forged\\rB" in error
    assert "B\\x85C\\u2028D\\x1b[0m [GET]" in error
    # The traceback is on the same line, its line breaks escaped.
    assert "\\nTraceback (most recent call last):\\n" in error
    assert "RuntimeError: cannot serve a\\n2026-01-01" in error


def test_flasks_error_line_for_a_hostile_path_is_one_json_line(json_app: Flask) -> None:
    failing_route(json_app)
    sink = capture(json_app)
    json_app.test_client().get(HOSTILE_PATH)

    written = sink.getvalue()
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]", written)
    assert written.count("\n") == len(written.splitlines())
    [error] = [line for line in json_lines(sink) if line["level"] == "ERROR"]
    assert error["message"].startswith("Exception on /boom/a\n2026-01-01 00:00:00,000 INFO")
    assert "B\x85C\u2028D\x1b[0m [GET]" in error["message"]  # the path, as decoded
    assert "RuntimeError: cannot serve a\n2026" in error["exception"]


def test_werkzeugs_request_lines_lose_their_query(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The development server's request log (`flask run`) goes through Glue's
    filter; it escapes the line itself, and colours it (left as it is)."""
    caplog.set_level(logging.INFO, "werkzeug")
    logging.getLogger("werkzeug").info(
        '127.0.0.1 - - [01/Jan/2026 00:00:00] "%s" %s %s',
        f"\x1b[33mGET /ifbyphone/verify_caller?key={KEY}&pin=24682468 HTTP/1.1\\x0a\x1b[0m",
        "404",
        "-",
    )
    [record] = caplog.records
    assert record.getMessage() == (
        '127.0.0.1 - - [01/Jan/2026 00:00:00] "\x1b[33mGET /ifbyphone/verify_caller?<redacted> '
        'HTTP/1.1\\x0a\x1b[0m" 404 -'
    )


def test_werkzeugs_log_is_one_line_per_record(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """The development server escapes C0 and C1 in a request line, not U+2028
    (which it decodes from %E2%80%A8), and logs a failed request's traceback
    over many lines: each record is still one line, its colours as they were."""
    caplog.set_level(logging.INFO, "werkzeug")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", f"/a%E2%80%A8forged%E2%80%A9line?key={KEY}")
        assert connection.getresponse().status == 404
        connection.close()
    finally:
        server.shutdown()
        thread.join()
    # What werkzeug logs when the application fails outside Flask's handling.
    logging.getLogger("werkzeug").error(
        "127.0.0.1 - - [01/Jan/2026 00:00:00] Error on request:\nTraceback (most recent call"
        ' last):\n  File "app.py", line 1\n\x1b[1mValueError: /a\u2028forged\n'
    )

    access, failure = [record.getMessage() for record in caplog.records]
    assert '"\x1b[33mGET /a\\u2028forged\\u2029line?<redacted> HTTP/1.1\x1b[0m"' in access
    assert access.endswith(" 404 -") and KEY not in access
    assert failure == (
        "127.0.0.1 - - [01/Jan/2026 00:00:00] Error on request:\\nTraceback (most recent call"
        ' last):\\n  File "app.py", line 1\\n\x1b[1mValueError: /a\\u2028forged\\n'
    )
