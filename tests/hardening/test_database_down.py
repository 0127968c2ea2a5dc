"""The database down, unreachable or slow: every platform route still answers
within a second, with the flow's apology in well-formed XML; the log names
each event it could not store (masked) with its request id; and once the
database is back, the next call works, without a restart.

Glue runs in gunicorn (one worker, so its pool is the one the test warmed up).
PostgreSQL is made to fail by a proxy in between (tests/helpers/hardening/proxy.py),
never by stopping it: other test runs share it. "Slow" holds a lock that every
request needs, from a connection of the test's own.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import pytest
from lxml import etree
from sqlalchemy import Connection, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from app.db import make_engine
from app.dialects.ifbyphone import decode_pass_through
from app.models import Call, CallEvent, VerificationAttempt
from tests.helpers.directory import add_user
from tests.helpers.hardening.hosts import PUBLIC_URL, SERVER_ENV
from tests.helpers.hardening.proxy import DbProxy, Mode
from tests.helpers.servers import Balancer, Reply, Server, gunicorn
from tests.helpers.settings import TEST_SECRETS

APOLOGY = "We are sorry, something went wrong. Please call again later."  # verify_caller's error
PIN = "24682468"  # distinctive: must appear in no log line
BUDGET = 1.0  # seconds a platform may wait for its answer
KEYS = {
    platform: TEST_SECRETS[f"{platform.upper()}_SECRET"]
    for platform in ("ifbyphone", "voipnow", "didml")
}


class Outage:
    """Glue on gunicorn against a database that can be made to fail and recover."""

    def __init__(
        self,
        server: Server,
        session: Session,
        fail: Callable[[], None],
        recover: Callable[[], None],
    ) -> None:
        self.server, self.session = server, session
        self.fail, self.recover = fail, recover
        self.client = Balancer((server.base,), timeout=10)


@pytest.fixture(
    params=["postgresql-down", "postgresql-stall", "postgresql-locked", "sqlite-locked"]
)
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    backend, _, mode = request.param.partition("-")
    if backend == "sqlite":
        path = tmp_path / "glue.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield from _sqlite_locked(f"sqlite:///{path}", path, tmp_path)
        return
    url: str = request.getfixturevalue("shared_url")
    if mode == "locked":
        yield from _postgresql_locked(url, tmp_path)
        return
    proxy = DbProxy()
    proxied = make_url(url).set(host="127.0.0.1", port=proxy.port)
    glue_url = proxied.render_as_string(hide_password=False)
    fail = cast(Mode, mode)
    try:
        with _glue(glue_url, url, tmp_path) as (server, session):
            yield Outage(
                server, session, lambda: proxy.set_mode(fail), lambda: proxy.set_mode("pass")
            )
    finally:
        proxy.close()


def _postgresql_locked(url: str, tmp_path: Path) -> Iterator[Outage]:
    engine = make_engine(url)
    holder: list[Connection] = []

    def lock() -> None:
        conn = engine.connect()
        conn.execute(text("LOCK TABLE call_events IN ACCESS EXCLUSIVE MODE"))  # until rollback
        holder.append(conn)

    def unlock() -> None:
        holder.pop().rollback()

    try:
        with _glue(url, url, tmp_path) as (server, session):
            yield Outage(server, session, lock, unlock)
    finally:
        for conn in holder:
            conn.close()
        engine.dispose()


def _sqlite_locked(url: str, path: Path, tmp_path: Path) -> Iterator[Outage]:
    holder: list[sqlite3.Connection] = []

    def lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")  # another writer, taking its time
        holder.append(conn)

    def unlock() -> None:
        conn = holder.pop()
        conn.execute("ROLLBACK")
        conn.close()

    try:
        with _glue(url, url, tmp_path) as (server, session):
            yield Outage(server, session, lock, unlock)
    finally:
        for conn in holder:
            conn.close()


@contextmanager
def _glue(glue_url: str, direct_url: str, workdir: Path) -> Iterator[tuple[Server, Session]]:
    """A gunicorn on `glue_url`, with Ada in the directory (written at `direct_url`),
    and a session of the test's own to read what Glue stored."""
    engine = make_engine(direct_url)
    session = Session(engine)
    add_user(session, "1001", "Ada Lovelace", PIN, "+13125550101")
    session.close()  # holds no locks while Glue runs
    try:
        with gunicorn(glue_url, workdir, "glue", SERVER_ENV) as server:
            yield server, session
    finally:
        session.close()
        engine.dispose()


def _xml(reply: Reply, root: str) -> etree._Element:
    assert reply.status_code == 200, reply.data
    assert reply.mimetype == "text/xml"
    element = etree.fromstring(reply.data)
    assert element.tag == root
    return element


def _says_sorry_and_hangs_up(reply: Reply) -> None:
    """didML and TwiML: the flow's error steps."""
    response = _xml(reply, "Response")
    assert [(el.tag, el.text) for el in response] == [("Say", APOLOGY), ("Hangup", None)]


def ifbyphone_turn(client: Balancer, call: str) -> list[Reply]:
    """The caller's answers, then IfbyPhone's post-back from the apology's SurVo."""
    url = f"/ifbyphone/verify_caller?key={KEYS['ifbyphone']}"
    fields = {"caller_id": "3125550199", "session_id": call, "timestamp": "2026-11-21 12:00:00"}
    first = client.post(url, data={**fields, "p_t": "", "account": "1001", "pin": PIN})
    action = _xml(first, "action")
    assert action.findtext("app") == "survo"
    assert action.findtext("parameters/user_parameters/message") == APOLOGY
    p_t = action.findtext("parameters/p_t") or ""
    assert decode_pass_through(p_t)["next"] == "error:1"
    second = client.post(url, data={**fields, "p_t": p_t})
    assert _xml(second, "action").findtext("app") == "hangup"  # the apology is not repeated
    return [first, second]


def voipnow_dial_in(client: Balancer, call: str) -> list[Reply]:
    reply = client.post(
        f"/voipnow/verify_caller/dial-in?key={KEYS['voipnow']}",
        data={
            "CallID": call,
            "CallerIDNum": "3125550199",
            "account": "1001",
            "pin": PIN,
            "glue_turn": "",
        },
    )
    response = _xml(reply, "Response")
    assert [el.text for el in response.iter("PlayTTS")] == [APOLOGY]
    assert response[-1].tag == "Hangup"
    return [reply]


def voipnow_hangup(client: Balancer, call: str) -> list[Reply]:
    reply = client.post(
        f"/voipnow/verify_caller/hangup?key={KEYS['voipnow']}",
        data={"CallID": call, "CallStatus": "ANSWER", "CallerIDNum": "3125550199"},
    )
    assert len(_xml(reply, "Response")) == 0  # VoipNow ignores it: an empty <Response/>
    return [reply]


def didml_start(client: Balancer, call: str) -> list[Reply]:
    reply = client.post(
        f"/didml/verify_caller?key={KEYS['didml']}", data={"callSid": call, "From": "+13125550199"}
    )
    _says_sorry_and_hangs_up(reply)
    return [reply]


def didml_pin(client: Balancer, call: str) -> list[Reply]:
    """The PIN, as the answer to an earlier <Gather>."""
    reply = client.post(
        f"/didml/verify_caller?key={KEYS['didml']}&turn=2&question=pin",
        data={"callSid": call, "From": "+13125550199", "Digits": PIN},
    )
    _says_sorry_and_hangs_up(reply)
    return [reply]


def twiml_start(client: Balancer, call: str) -> list[Reply]:
    fields = {"CallSid": call, "From": "+13125550199", "To": "+18005551212"}
    reply = client.post(
        "/twiml/verify_caller", data=fields, headers=_signed("/twiml/verify_caller", fields)
    )
    _says_sorry_and_hangs_up(reply)
    return [reply]


def didml_status(client: Balancer, call: str) -> list[Reply]:
    reply = client.post(
        f"/didml/status?key={KEYS['didml']}", data={"callSid": call, "CallStatus": "completed"}
    )
    # Not XML: nobody reads a status callback's answer. The 500 lets the platform retry.
    assert (reply.status_code, reply.data) == (500, b"status not stored\n")
    return [reply]


def twiml_status(client: Balancer, call: str) -> list[Reply]:
    fields = {"CallSid": call, "CallStatus": "completed"}
    reply = client.post("/twiml/status", data=fields, headers=_signed("/twiml/status", fields))
    assert (reply.status_code, reply.data) == (500, b"status not stored\n")
    return [reply]


def _signed(path: str, fields: dict[str, str]) -> dict[str, str]:
    validator = RequestValidator(TEST_SECRETS["TWILIO_AUTH_TOKEN"])
    return {"X-Twilio-Signature": validator.compute_signature(PUBLIC_URL + path, fields)}


ROUTES = [
    ifbyphone_turn,
    voipnow_dial_in,
    voipnow_hangup,
    didml_start,
    didml_pin,
    twiml_start,
    didml_status,
    twiml_status,
]


def test_every_route_answers_in_time_logs_what_is_lost_and_recovers(
    outage: Outage, capsys: pytest.CaptureFixture[str]
) -> None:
    client = outage.client
    # Up: a call goes through, and leaves a connection in the pool.
    assert _didml_asks(client, "before")

    outage.fail()
    replies = {route.__name__: route(client, f"lost-{route.__name__}") for route in ROUTES}

    slowest = max(r.seconds for rs in replies.values() for r in rs)
    assert slowest < BUDGET, {
        name: [round(r.seconds, 3) for r in rs] for name, rs in replies.items()
    }
    log = outage.server.log()
    for name, sent in replies.items():
        for reply in sent:
            lost = _lost_line(log, reply.headers["X-Request-ID"])
            assert lost, (
                f"{name}: no 'event not stored' line for request {reply.headers['X-Request-ID']}"
            )
    assert PIN not in log
    assert not any(key in log for key in TEST_SECRETS.values())
    assert '"pin": "***"' in _lost_line(log, replies["ifbyphone_turn"][0].headers["X-Request-ID"])
    assert '"Digits": "***"' in _lost_line(log, replies["didml_pin"][0].headers["X-Request-ID"])

    outage.recover()
    first = _verified(client, "after")
    session = outage.session
    call = session.scalars(select(Call).where(Call.platform_call_id == "after")).one()
    assert (call.outcome, call.status) == ("verified", "ended")
    assert len(session.scalars(select(CallEvent).where(CallEvent.call_id == call.id)).all()) == 2
    assert session.scalars(select(VerificationAttempt.outcome)).all() == ["verified"]
    # What was lost is not in the database (the log holds it).
    assert not session.scalars(select(Call).where(Call.platform_call_id.like("lost-%"))).all()
    with capsys.disabled():
        print(f"\nslowest fallback {slowest:.3f} s; first request after recovery {first:.3f} s")


def _lost_line(log: str, request_id: str) -> str:
    match = re.search(rf"^.*event not stored: .* request={re.escape(request_id)} .*$", log, re.M)
    return match.group(0) if match else ""


def _didml_asks(client: Balancer, call: str) -> bool:
    """A new didML call is asked its first question."""
    reply = client.post(
        f"/didml/verify_caller?key={KEYS['didml']}", data={"callSid": call, "From": "+13125550199"}
    )
    return _xml(reply, "Response").find("Gather") is not None


def _verified(client: Balancer, call: str) -> float:
    """A new IfbyPhone call with the right PIN; the first request's seconds."""
    url = f"/ifbyphone/verify_caller?key={KEYS['ifbyphone']}"
    fields = {"caller_id": "3125550199", "session_id": call, "timestamp": "2026-11-21 12:05:00"}
    first = client.post(url, data={**fields, "p_t": "", "account": "1001", "pin": PIN})
    action = _xml(first, "action")
    assert action.findtext("parameters/user_parameters/message") == "Thank you, Ada Lovelace."
    second = client.post(url, data={**fields, "p_t": action.findtext("parameters/p_t") or ""})
    assert _xml(second, "action").findtext("app") == "transfer"
    return first.seconds
