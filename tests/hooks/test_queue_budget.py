"""A platform turn that waited past GLUE_QUEUE_BUDGET in front of Glue (a
proxy's queue, the listen backlog), or past GLUE_QUEUE_TARGET while the queue
stands, is answered at once without its work: the caller hears the flow's
fallback, and the log keeps what it sent (masked). Within them, with a stamp
Glue does not trust, or for a status callback (nobody waits on it, and a shed
one could be lost), nothing changes. Every known wait is counted."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import make_engine, upgrade
from app.models import Call, CallEvent
from app.web import queue_wait
from tests.helpers.directory import add_user
from tests.helpers.ifbyphone import KEY, answers, message
from tests.helpers.metrics import METRICS_TOKEN, changes, scrape
from tests.helpers.servers import gunicorn
from tests.helpers.settings import TEST_SECRETS

APOLOGY = "We are sorry, something went wrong. Please call again later."  # verify_caller's error
PIN = "97310"
DIDML_KEY = TEST_SECRETS["DIDML_SECRET"]


@pytest.fixture
def overrides() -> dict[str, object]:
    return {}


@pytest.fixture
def app_config(app_config: dict[str, object], overrides: dict[str, object]) -> dict[str, object]:
    budget = {
        "TRUSTED_PROXIES": 1,
        "TRUST_REQUEST_START": True,
        "QUEUE_BUDGET": 1.0,
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    return {**app_config, **budget, **overrides}


@pytest.fixture
def ada(session: Session) -> None:
    add_user(session, "1001", "Ada Lovelace", PIN, "+13125550101")
    session.commit()


def stamped(seconds_ago: float) -> dict[str, str]:
    """The header a proxy sets on arrival (nginx's t=${msec})."""
    return {"X-Request-Start": f"t={time.time() - seconds_ago:.3f}"}


def verify(client: FlaskClient, session_id: str, headers: dict[str, str]) -> etree._Element:
    response = client.post(
        f"/ifbyphone/verify_caller?key={KEY}",
        data=answers(session_id, "1001", PIN),
        headers=headers,
    )
    assert response.status_code == 200 and response.mimetype == "text/xml"
    return etree.fromstring(response.data)


def rows(session: Session, model: type) -> int:
    session.commit()
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_turn_that_waited_too_long_hears_the_fallback_and_is_logged_not_stored(
    client: FlaskClient, session: Session, ada: None, caplog: pytest.LogCaptureFixture
) -> None:
    before = scrape(client)
    with caplog.at_level(logging.INFO):
        action = verify(client, "s-late", stamped(2.5))

    assert message(action) == APOLOGY
    assert rows(session, Call) == 0 and rows(session, CallEvent) == 0
    [line] = [r.getMessage() for r in caplog.records if "event not stored" in r.getMessage()]
    assert "platform=ifbyphone kind=turn" in line and "s-late" in line
    notes = json.loads(re.search(r"notes=(\{.*\})$", line)[1])  # type: ignore[index]
    assert 2.5 <= notes["shed_after_seconds"] < 10
    assert PIN not in caplog.text
    grown = changes(before, scrape(client))
    assert grown[("glue_turns_shed_total", frozenset({("platform", "ifbyphone")}))] == 1.0
    labels = {("platform", "ifbyphone"), ("flow", "verify_caller"), ("reason", "overload")}
    assert grown[("glue_fallbacks_served_total", frozenset(labels))] == 1.0


def test_within_the_budget_the_turn_runs(client: FlaskClient, session: Session, ada: None) -> None:
    assert message(verify(client, "s-soon", stamped(0.3))) == "Thank you, Ada Lovelace."
    assert rows(session, CallEvent) == 1


@pytest.mark.parametrize(
    "overrides",
    [{"TRUSTED_PROXIES": 0}, {"TRUST_REQUEST_START": False}, {"QUEUE_BUDGET": 0.0}],
    ids=["no-proxy", "stamp-not-trusted", "off"],
)
def test_an_untrusted_stamp_or_no_budget_sheds_nothing(
    client: FlaskClient, session: Session, ada: None
) -> None:
    assert message(verify(client, "s-stamp", stamped(30))) == "Thank you, Ada Lovelace."
    assert rows(session, CallEvent) == 1


def test_under_a_standing_queue_a_turn_past_the_target_is_shed(
    app: Flask, client: FlaskClient, session: Session, ada: None
) -> None:
    # A queue that has stood for its interval already (0 s here, 2 s in Glue).
    app.extensions[queue_wait.EXTENSION] = queue_wait.StandingQueue(interval=0.0)
    before = scrape(client)
    assert message(verify(client, "s-stood", stamped(0.5))) == APOLOGY  # within the budget
    assert message(verify(client, "s-fresh", stamped(0))) == "Thank you, Ada Lovelace."
    assert rows(session, CallEvent) == 1
    grown = changes(before, scrape(client))
    assert grown[("glue_turns_shed_total", frozenset({("platform", "ifbyphone")}))] == 1.0
    # Each turn's wait is counted: two turns, both in the histogram.
    ifbyphone = ("platform", "ifbyphone")
    assert grown[("glue_request_queue_seconds_count", frozenset({ifbyphone}))] == 2.0
    # The fresh one is in the bucket of waits within the target; the late one is not.
    bucket = ("glue_request_queue_seconds_bucket", frozenset({ifbyphone, ("le", "0.25")}))
    assert grown[bucket] == 1.0


@pytest.mark.parametrize("overrides", [{"QUEUE_TARGET": 0.0}], ids=["budget-only"])
def test_without_a_target_only_the_budget_sheds(
    app: Flask, client: FlaskClient, session: Session, ada: None
) -> None:
    app.extensions[queue_wait.EXTENSION] = queue_wait.StandingQueue(interval=0.0)
    assert message(verify(client, "s-stood", stamped(0.5))) == "Thank you, Ada Lovelace."
    assert rows(session, CallEvent) == 1


def test_a_burst_sheds_nothing_until_the_queue_has_stood_its_interval() -> None:
    standing, target = queue_wait.StandingQueue(interval=1.0), 0.1
    # A burst: every turn past the target, for less than the interval.
    assert not any(standing.stands(0.4, target, now) for now in (10.0, 10.3, 10.9))
    assert not standing.stands(0.05, target, 11.0)  # drained: the next one waited little
    # Past the target from 12.0 on: standing once a whole interval has gone by.
    assert not standing.stands(0.5, target, 12.0)
    assert not standing.stands(0.5, target, 12.9)
    assert standing.stands(0.5, target, 13.0)
    assert not standing.stands(0.05, target, 13.1)  # within the target: never shed
    # Past it again soon after shedding: the same overload, shed at once.
    assert standing.stands(0.3, target, 13.2)
    # No turn at all for longer than the interval: nothing stood meanwhile, so a
    # late turn long after is a new queue, which must stand its interval again.
    assert not standing.stands(0.3, target, 20.1)
    assert not standing.stands(0.3, target, 20.6)
    assert standing.stands(0.3, target, 21.1)
    # A turn past the budget is noted like any other: the queue stands all along.
    standing = queue_wait.StandingQueue(interval=1.0)
    assert not standing.stands(4.0, target, 30.0)
    assert standing.stands(0.2, target, 31.0)


def test_a_status_callback_is_never_shed(client: FlaskClient, session: Session) -> None:
    response = client.post(
        f"/didml/status?key={DIDML_KEY}",
        data={"callSid": "CA-late", "CallStatus": "completed", "CallDuration": "12"},
        headers=stamped(4),
    )
    assert response.status_code == 204
    assert rows(session, CallEvent) == 1


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("t=1733580000.250", 2.0),  # seconds (nginx's ${msec})
        ("t=1733580000250", 2.0),  # milliseconds
        ("t=1733580000250000", 2.0),  # microseconds
        ("1733580000250", 2.0),  # without t=
        ("t=1733580002.500", 0.0),  # a proxy's clock a little ahead
    ],
)
def test_the_stamp_is_read_in_any_unit_proxies_use(value: str, wait: float) -> None:
    assert queue_wait.from_request_start(value, now=1733580002.25) == pytest.approx(wait)


@pytest.mark.parametrize("value", ["", "t=", "soon", "t=nan", "t=-5", "t=1000", "t=inf"])
def test_a_stamp_that_says_nothing_plausible_is_ignored(value: str) -> None:
    assert queue_wait.from_request_start(value, now=1733580002.25) is None


LINUX_TCP = pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="TCP_INFO is Linux's")


@LINUX_TCP
def test_a_socket_tells_how_long_its_request_has_waited() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname()) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: glue\r\n\r\n")
            time.sleep(0.3)  # in the backlog, as behind a busy worker
            accepted, _ = listener.accept()
            with accepted:
                wait = queue_wait.from_socket(accepted)
    assert wait is not None and 0.25 <= wait < 2.0
    assert queue_wait.from_socket(None) is None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Session]]:
    """Glue on gunicorn with one sync worker and a budget of half a second."""
    database_url = f"sqlite:///{tmp_path}/g.db"
    engine = make_engine(database_url)
    upgrade(engine)
    session = Session(engine)
    add_user(session, "1001", "Ada Lovelace", PIN, "+13125550101")
    session.commit()
    try:
        with gunicorn(database_url, tmp_path, env={"GLUE_QUEUE_BUDGET": "0.5"}) as server:
            yield server.base, session
    finally:
        session.close()
        engine.dispose()


@LINUX_TCP
def test_under_gunicorn_a_request_held_in_the_backlog_is_shed(
    served: tuple[str, Session],
) -> None:
    base, session = served
    host, port = base.removeprefix("http://").split(":")
    address = (host, int(port))
    path = f"/ifbyphone/verify_caller?{urlencode({'key': KEY})}"

    def request(session_id: str) -> bytes:
        body = urlencode(answers(session_id, "1001", PIN)).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    # The one worker is taken by a request whose body comes slowly.
    slow = socket.create_connection(address)
    first = request("s-first")
    slow.sendall(first[:-5])
    time.sleep(0.2)
    # Meanwhile a call's request arrives, and waits in the listen backlog.
    late = socket.create_connection(address)
    late.sendall(request("s-late"))
    time.sleep(1.2)
    slow.sendall(first[-5:])
    answered = [_read(slow), _read(late)]
    slow.close()
    late.close()

    said = [message(etree.fromstring(reply.partition(b"\r\n\r\n")[2])) for reply in answered]
    assert said == ["Thank you, Ada Lovelace.", APOLOGY]
    session.commit()
    stored = session.scalars(select(Call.platform_call_id)).all()
    assert stored == ["s-first"]


def _read(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
