"""Every log line of a full run, searched for PINs, passwords, tokens and keys.

The run: directory commands, calls on all four platforms (right, wrong and
lockout PINs, by GET and POST, malformed requests, status callbacks and
hang-ups), a database fault in the middle of a turn, the web page's sign-in and
the JSON API. Every logger is at DEBUG and every record is captured, library
loggers included; tracebacks are searched too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.auth import tokens
from app.auth.passwords import hash_password
from app.models import User, VerificationAttempt
from tests.helpers.journeys import PLATFORMS, Driver
from tests.helpers.settings import TEST_SECRETS

PIN, WRONG_PIN, GROUP_PIN = "739162", "508317", "640298"
PASSWORD = "Zebra-Quartz-913"
IFBYPHONE_KEY = TEST_SECRETS["IFBYPHONE_SECRET"]


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The formatted line (with any traceback), and the raw arguments in case
        # a formatter elsewhere prints them differently.
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    return {**app_config, "RATE_LIMIT_ENABLED": False, "LOG_LEVEL": "DEBUG"}


@pytest.fixture
def captured(app: Flask) -> Iterator[Everything]:
    """Made after the app (which sets its loggers up): every logger at DEBUG."""
    handler = Everything()
    loggers = [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]
    saved = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    logging.getLogger("app").addHandler(handler)  # it does not propagate
    yield handler
    logging.getLogger().removeHandler(handler)
    logging.getLogger("app").removeHandler(handler)
    for logger, level in saved:
        logger.setLevel(level)


def play_calls(client: FlaskClient) -> None:
    for platform in PLATFORMS:
        Driver(client, platform, "verify_caller", f"{platform}-ok").attempt("1001", PIN)
        for n in range(2):  # 8 in all: 1002 locks on the fifth
            Driver(client, platform, "verify_caller", f"{platform}-{n}").attempt("1002", WRONG_PIN)
        Driver(client, platform, "group_line", f"{platform}-group").attempt("500", GROUP_PIN)
    # IfbyPhone by GET: the answers, PIN included, are in the query string.
    client.get(
        "/ifbyphone/verify_caller",
        query_string={"key": IFBYPHONE_KEY, "session_id": "get-1", "account": "1001", "pin": PIN},
    )
    # Malformed: no session, a field too long, an unknown flow, a wrong key.
    client.post(f"/ifbyphone/verify_caller?key={IFBYPHONE_KEY}", data={"pin": PIN})
    client.post(
        f"/ifbyphone/verify_caller?key={IFBYPHONE_KEY}",
        data={"session_id": "long", "pin": PIN, "account": "1" * 5000},
    )
    client.post(f"/ifbyphone/nope?key={IFBYPHONE_KEY}", data={"session_id": "x", "pin": PIN})
    client.post("/ifbyphone/verify_caller?key=wrong-key", data={"session_id": "y", "pin": PIN})
    client.post(
        f"/voipnow/verify_caller/hangup?key={TEST_SECRETS['VOIPNOW_SECRET']}",
        data={"CallID": "voipnow-ok", "CallStatus": "ANSWERED", "pin": PIN},
    )
    client.post(
        f"/didml/status?key={TEST_SECRETS['DIDML_SECRET']}",
        data={"callSid": "didml-ok", "CallStatus": "completed", "pin": PIN},
    )


def test_a_full_run_logs_no_secret(
    app: Flask, client: FlaskClient, session: Session, captured: Everything
) -> None:
    runner = app.test_cli_runner()
    for args in (
        ["users", "add", "1001", "--name", "Ada", "--pin", PIN, "--phone", "+13125550101"],
        ["users", "add", "1002", "--name", "Grace", "--pin", PIN, "--phone", "+13125550102"],
        ["users", "set-pin", "1002", "--pin", PIN],
        ["users", "add", "1003", "--name", "Short", "--pin", "12"],  # refused: too short
        ["groups", "add", "500", "--name", "Night", "--pin", GROUP_PIN],
        ["groups", "add-member", "500", "1001"],
    ):
        runner.invoke(args=args)
    session.execute(text("UPDATE users SET password_hash = :h"), {"h": hash_password(PASSWORD)})
    session.commit()

    play_calls(client)
    session.commit()
    outcomes = session.scalars(select(VerificationAttempt.outcome)).all()
    assert outcomes.count("verified") == 2 * len(PLATFORMS) + 1  # Ada, the group; by GET
    assert outcomes.count("locked") >= 1

    # A database fault in the middle of a turn: the flow's apology, a logged
    # traceback (with the SQL, never its values) and the lost event.
    session.execute(text("ALTER TABLE verification_attempts RENAME TO attempts_away"))
    session.commit()
    try:
        Driver(client, "ifbyphone", "verify_caller", "fault").attempt("1001", PIN)
        Driver(client, "twiml", "verify_caller", "fault-twiml").attempt("1001", PIN)
    finally:
        session.execute(text("ALTER TABLE attempts_away RENAME TO verification_attempts"))
        session.commit()

    # The web page (sign-in, right and wrong) and the JSON API.
    form = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert csrf is not None
    client.post(
        "/login", data={"account": "1001", "password": PASSWORD + "x", "csrf_token": csrf[1]}
    )
    client.post("/login", data={"account": "1001", "password": PASSWORD, "csrf_token": csrf[1]})
    api_token = tokens.create(session, "crm")
    session.commit()
    client.get("/api/v1/calls", headers={"Authorization": f"Bearer {api_token}"})
    client.get("/api/v1/calls", headers={"Authorization": f"Bearer {api_token}x"})

    log = "\n".join(captured.lines)
    assert "event not stored" in log  # the fault was met and logged ...
    assert "Traceback" in log  # ... with its traceback
    assert session.get(User, 1) is not None
    secrets = {
        "PIN": PIN,
        "wrong PIN": WRONG_PIN,
        "group PIN": GROUP_PIN,
        "password": PASSWORD,
        "API token": api_token,
        **TEST_SECRETS,
    }
    for name, value in secrets.items():
        for form in {value, quote(value)}:
            assert form not in log, f"the {name} is in the log"
