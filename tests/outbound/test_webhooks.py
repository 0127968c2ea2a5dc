"""Webhooks: a host application's receiver, a real local HTTP server checking each
signature with the snippet of docs/webhooks.md and with its own implementation,
gets an event for each status of the calls its token placed (from the job, the
providers' real status callbacks, a cancel) and for each verification result;
failures are retried with backoff, each attempt recorded. Through the real job
(huey in immediate mode, its schedule read as the consumer reads it), on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import phonenumbers
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from lxml import etree
from pytest_httpserver import HTTPServer
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug import Request, Response

from app.auth import tokens
from app.db import get_session
from app.models import ApiToken, CallAction, WebhookDelivery, WebhookEvent
from app.outbound import jobs
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.webhooks import PATH, Receiver, documented_verify, set_webhook, signed_by

CALL = {"user": "1001", "target": {"kind": "user", "value": "1002"}}
LONDON = phonenumbers.format_number(
    phonenumbers.example_number_for_type("GB", phonenumbers.PhoneNumberType.FIXED_LINE),
    phonenumbers.PhoneNumberFormat.E164,
)
IFBYPHONE_ENDPOINT = "/click_to_xyz.php"


@pytest.fixture(autouse=True)
def empty_schedule(immediate_jobs: None) -> None:
    """No scheduled job left over from another test (huey's in-memory storage)."""
    jobs.huey.flush()


def bearer(session: Session, name: str) -> dict[str, str]:
    value = tokens.create(session, name)
    session.commit()
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def crm(session: Session) -> dict[str, str]:
    """The API token `crm`'s auth header."""
    return bearer(session, "crm")


@pytest.fixture
def receiver(
    app: Flask, provider: HTTPServer, runner: FlaskCliRunner, crm: dict[str, str]
) -> Receiver:
    """crm's webhook: a receiver on the local server (http: allowed for it)."""
    app.config["WEBHOOK_ALLOW_HTTP"] = True
    found = Receiver(provider).listen()
    found.secret = set_webhook(runner, "crm", found.url)
    return found


def status_callback(client: FlaskClient, action_id: int, status: str) -> None:
    """DIDforSale reports the call's progress to Glue's status hook."""
    response = client.post(
        "/didml/status",
        query_string={"action": str(action_id), "key": TEST_SECRETS["DIDML_SECRET"]},
        data={"callSid": "CA-web-1", "CallStatus": status, "Direction": "Outbound"},
    )
    assert response.status_code == 204


def events(session: Session) -> list[WebhookEvent]:
    session.commit()  # see what the requests and jobs wrote
    return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def deliveries(session: Session, event: WebhookEvent) -> list[tuple[Any, ...]]:
    session.commit()
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_event_id == event.id)
        .order_by(WebhookDelivery.id)
    )
    return [(d.attempt, d.replay, d.status_code, d.response_excerpt, d.error) for d in rows]


def scheduled_retries() -> list[tuple[tuple[Any, ...], float]]:
    """The webhook deliveries waiting in huey's schedule: (args, seconds from now)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return [
        (tuple(task.args), (task.eta - now).total_seconds())
        for task in jobs.huey.scheduled()
        if task.name.endswith("deliver_webhook")
    ]


def run_scheduled_retry(app: Flask) -> None:
    """Take the one scheduled delivery off the schedule and run it, as the consumer
    would once its time has come."""
    due = jobs.huey.read_schedule(datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1))
    [task] = [task for task in due if task.name.endswith("deliver_webhook")]
    with app.app_context():
        make_due(get_session(), task.args[0])
        result = jobs.deliver_webhook(*task.args)
        assert result is not None
        result.get()  # re-raises whatever the task raised


def make_due(session: Session, event_row_id: int, ago: timedelta = timedelta(0)) -> None:
    """The clock moves on: the event's next attempt is due, `ago`."""
    session.commit()
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_row_id)
        .values(next_attempt_at=datetime.now(UTC).replace(tzinfo=None) - ago)
    )
    session.commit()


def queue_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue (Redis) refuses every job, as huey does when it is unreachable."""

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("queue unreachable")

    monkeypatch.setattr(jobs.huey, "enqueue", unreachable)


def refused_call(client: FlaskClient, headers: dict[str, str]) -> int:
    """A call the destination policy refuses (another country): one event, no job."""
    body = {"user": "1001", "target": {"kind": "number", "value": LONDON}}
    response = client.post("/api/v1/calls", json=body, headers=headers)
    assert response.status_code == 422
    action_id: int = response.get_json()["call"]["id"]
    return action_id


# --- what is sent ------------------------------------------------------------------


def test_each_status_of_a_call_is_posted_once_signed_with_the_call_as_the_api_shows_it(
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    before = int(time.time())
    started = client.post("/api/v1/calls", json=CALL, headers=crm)
    assert started.status_code == 202
    action_id = started.get_json()["id"]
    # DIDforSale's status callbacks, through Glue's hook.
    for status in ("ringing", "answered", "completed"):
        status_callback(client, action_id, status)
    # The data is the API's own view of the call: the last event's is what GET shows.
    view = client.get(f"/api/v1/calls/{action_id}", headers=crm).get_json()
    assert receiver.events[-1]["data"] == view
    assert [s["status"] for s in view["statuses"]] == ["ringing", "answered", "completed"]
    # Late reports (a repeat, and a new one) move nothing, and so announce nothing.
    status_callback(client, action_id, "ringing")
    status_callback(client, action_id, "initiated")

    assert receiver.types() == [
        "call.queued",  # recorded by the API
        "call.calling",  # claimed by the job, then accepted by the provider
        "call.ringing",
        "call.connected",
        "call.completed",
    ]
    assert receiver.duplicates == []
    assert [(d.valid, d.valid_by_own_check) for d in receiver.deliveries] == [(True, True)] * 5
    for event in receiver.events:
        assert event["type"] == f"call.{event['data']['status']}"
        assert event["data"]["id"] == action_id
        assert event["id"].startswith("evt_") and before <= event["created"] <= time.time()
    assert len({event["id"] for event in receiver.events}) == 5
    for delivery in receiver.deliveries:
        assert delivery.headers["Content-Type"] == "application/json"
        assert delivery.headers["Glue-Event-Id"] == delivery.event["id"]

    rows = events(session)
    assert [(r.type, r.action_id, r.state, r.attempts, r.url) for r in rows] == [
        (event["type"], action_id, "delivered", 1, receiver.url) for event in receiver.events
    ]
    assert [r.event_id for r in rows] == [event["id"] for event in receiver.events]
    for row in rows:
        [(attempt, replay, status, excerpt, error)] = deliveries(session, row)
        assert (attempt, replay, status, error) == (1, False, 200, None)
        assert json.loads(excerpt) == {"received": row.event_id}
        assert row.delivered_at is not None and row.next_attempt_at is None
    assert scheduled_retries() == []


def test_a_call_by_a_token_without_a_webhook_sends_nothing(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    directory: dict[str, int],
) -> None:
    other = bearer(session, "intranet")  # no webhook; crm's is set
    action_id = client.post("/api/v1/calls", json=CALL, headers=other).get_json()["id"]
    for status in ("ringing", "answered", "completed"):
        status_callback(client, action_id, status)
    assert client.get(f"/api/v1/calls/{action_id}", headers=other).get_json()["status"] == (
        "completed"
    )
    assert events(session) == []
    assert receiver.deliveries == []


def test_a_change_rolled_back_writes_no_event_and_a_committed_one_writes_one(
    app: Flask,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    client: FlaskClient,
    directory: dict[str, int],
) -> None:
    action_id = refused_call(client, crm)
    assert receiver.types() == ["call.refused"]
    with app.app_context():
        glue = get_session()
        action = glue.get(CallAction, action_id)
        assert action is not None
        action.status = "failed"
        glue.flush()
        glue.rollback()
        assert glue.scalars(select(WebhookEvent.type)).all() == ["call.refused"]
        action = glue.get(CallAction, action_id)
        assert action is not None
        action.status = "failed"
        glue.commit()
    assert [row.type for row in events(session)] == ["call.refused", "call.failed"]
    assert receiver.types() == ["call.refused", "call.failed"]


def test_a_scheduled_call_cancelled_announces_both(
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    started = client.post("/api/v1/calls", json={**CALL, "at": at}, headers=crm)
    action_id = started.get_json()["id"]
    assert client.delete(f"/api/v1/calls/{action_id}", headers=crm).status_code == 200
    assert receiver.types() == ["call.scheduled", "call.cancelled"]
    assert receiver.events[-1]["data"]["cancel"]["by"] == "api token crm"


@pytest.fixture
def ifbyphone(app: Flask, provider: HTTPServer) -> HTTPServer:
    """IfbyPhone's click-to-SurVo API on the same local server."""
    provider.expect_request(IFBYPHONE_ENDPOINT).respond_with_data("Call Connected")
    app.config.update(
        IFBYPHONE_API_URL=provider.url_for(IFBYPHONE_ENDPOINT), IFBYPHONE_API_KEY="ibp-key"
    )
    return provider


def test_a_verification_calls_result_is_posted(
    client: FlaskClient,
    session: Session,
    ifbyphone: HTTPServer,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    started = client.post("/api/v1/users/1001/verifications", json={"method": "survo"}, headers=crm)
    action_id = started.get_json()["call"]["id"]
    [sent] = [r for r, _ in ifbyphone.log if r.path == IFBYPHONE_ENDPOINT]
    p_t = parse_qs(sent.get_data(as_text=True))["p_t"][0]
    # The SurVo runs on Ada's phone and posts her answers back, with Glue's p_t.
    client.post(
        f"/ifbyphone/verify_caller?key={TEST_SECRETS['IFBYPHONE_SECRET']}",
        data={
            "session_id": "s-v",
            "caller_id": "3125550101",
            "account": "1001",
            "pin": "2468",
            "p_t": p_t,
        },
    )
    assert receiver.types() == [
        "call.queued",
        "call.calling",  # claimed by the job
        "call.connected",  # IfbyPhone's answer
        "verification.verified",  # the SurVo's result
    ]
    last = receiver.events[-1]["data"]
    assert (last["id"], last["verification"]) == (action_id, "verified")
    assert all(d.valid for d in receiver.deliveries)


def spoken_code(client: FlaskClient, provider: HTTPServer) -> str:
    """The code the call reads: the voice document the provider fetches on answer."""
    [sent] = [r for r, _ in provider.log if r.path.endswith("/CallTermination/")]
    url = parse_qs(sent.get_data(as_text=True))["url"][0]
    said = etree.fromstring(client.post(urlsplit(url).path).data).findtext("Say") or ""
    return "".join(ch for ch in said if ch.isdigit())


def test_a_code_calls_result_is_posted_when_the_code_is_typed_back(
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    started = client.post("/api/v1/users/1001/verifications", json={"method": "code"}, headers=crm)
    code_id, action_id = started.get_json()["id"], started.get_json()["call"]["id"]
    code = spoken_code(client, receiver.server)
    url = f"/api/v1/users/1001/verifications/{code_id}"
    wrong = "000000" if code != "000000" else "111111"
    assert client.post(url, json={"code": wrong}, headers=crm).status_code == 422
    assert receiver.types() == ["call.queued", "call.calling"]  # a wrong try ends nothing
    assert client.post(url, json={"code": code}, headers=crm).get_json() == {"outcome": "confirmed"}
    assert receiver.types() == ["call.queued", "call.calling", "verification.confirmed"]
    last = receiver.events[-1]["data"]
    assert (last["id"], last["verification"], last["status"]) == (action_id, "confirmed", "calling")


def test_a_code_call_whose_tries_are_used_up_posts_its_failure(
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    started = client.post("/api/v1/users/1001/verifications", json={"method": "code"}, headers=crm)
    code = spoken_code(client, receiver.server)
    url = f"/api/v1/users/1001/verifications/{started.get_json()['id']}"
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert client.post(url, json={"code": wrong}, headers=crm).status_code == 422
    assert client.post(url, json={"code": code}, headers=crm).status_code == 410  # no tries
    assert receiver.types() == ["call.queued", "call.calling", "verification.failed"]


# --- delivery: retries, backoff, the record ---------------------------------------


def test_a_failing_receiver_gets_retries_with_backoff_each_recorded(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    app.config.update(WEBHOOK_TIMEOUT=0.3, WEBHOOK_RETRY_SECONDS=30)
    receiver.script = [500, "slow"]  # then 200
    refused_call(client, crm)
    [row] = events(session)
    assert (row.state, row.attempts) == ("pending", 1)
    [(args, delay)] = scheduled_retries()
    assert args == (row.id,) and 25 < delay <= 30

    run_scheduled_retry(app)  # the receiver answers after Glue stopped waiting
    [(args, delay)] = scheduled_retries()
    assert 85 < delay <= 90  # three times the wait before

    time.sleep(receiver.slow_seconds)  # the local server answers one request at a time
    run_scheduled_retry(app)
    assert scheduled_retries() == []
    [row] = events(session)
    assert (row.state, row.attempts, row.next_attempt_at) == ("delivered", 3, None)
    assert deliveries(session, row) == [
        (1, False, 500, "receiver says 500", None),
        (2, False, None, None, "no answer within 0.3 s"),
        (3, False, 200, json.dumps({"received": row.event_id}), None),
    ]
    # The slow answer was taken in the end: the same event came twice, and the
    # receiver processed it once, by its id.
    assert [d.event["id"] for d in receiver.deliveries] == [row.event_id] * 3
    assert receiver.types() == ["call.refused"] and receiver.duplicates == [row.event_id]
    # Each attempt was signed afresh, over the same bytes.
    assert len({d.body for d in receiver.deliveries}) == 1


def test_an_event_never_delivered_fails_after_the_last_attempt(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    app.config.update(WEBHOOK_MAX_ATTEMPTS=2)
    receiver.script = [503, 503]
    refused_call(client, crm)
    run_scheduled_retry(app)
    assert scheduled_retries() == []
    [row] = events(session)
    assert (row.state, row.attempts, row.delivered_at) == ("failed", 2, None)
    assert [d[2] for d in deliveries(session, row)] == [503, 503]
    assert receiver.events == []


def test_a_redirect_is_not_followed_but_retried(
    client: FlaskClient,
    session: Session,
    provider: HTTPServer,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    receiver.server.clear()  # the receiver has moved, and says so
    provider.expect_request(PATH, method="POST").respond_with_response(
        Response(status=301, headers={"Location": provider.url_for("/elsewhere")})
    )
    refused_call(client, crm)
    [row] = events(session)
    [(attempt, _, status, _, error)] = deliveries(session, row)
    assert (attempt, status, error, row.state) == (1, 301, None, "pending")
    assert [request.path for request, _ in provider.log] == [PATH]
    assert len(scheduled_retries()) == 1


def test_an_answer_in_a_charset_python_does_not_know_is_recorded(
    client: FlaskClient,
    session: Session,
    provider: HTTPServer,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    receiver.server.clear()
    provider.expect_request(PATH, method="POST").respond_with_response(
        Response("took it \u2713".encode(), status=200, content_type="text/plain; charset=bogus")
    )
    refused_call(client, crm)
    [row] = events(session)
    assert deliveries(session, row) == [(1, False, 200, "took it \u2713", None)]
    assert (row.state, row.attempts, row.next_attempt_at) == ("delivered", 1, None)


def test_a_receiver_that_cannot_be_reached_is_retried(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
    runner: FlaskCliRunner,
) -> None:
    set_webhook(runner, "crm", "http://127.0.0.1:9/nobody-listens")
    refused_call(client, crm)
    [row] = events(session)
    [(attempt, _, status, _, error)] = deliveries(session, row)
    assert (attempt, status, error) == (1, None, "not delivered: ConnectionError")
    assert row.state == "pending" and len(scheduled_retries()) == 1


def test_a_lost_job_is_queued_again_by_the_periodic_sweep(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    receiver.script = [500]
    refused_call(client, crm)
    jobs.huey.flush()  # the scheduled retry is lost (a worker died with it)
    with app.app_context():
        jobs.resend_stranded()  # not yet: it is not overdue
    assert len(receiver.deliveries) == 1
    session.commit()  # the test's session writes from a fresh transaction
    session.execute(
        update(WebhookEvent).values(
            next_attempt_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=11)
        )
    )
    session.commit()
    with app.app_context():
        jobs.resend_stranded()
    [row] = events(session)
    assert (row.state, row.attempts) == ("delivered", 2)
    assert receiver.types() == ["call.refused"]


def test_the_original_job_and_the_sweeps_post_once_between_them(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.script = [500]
    with monkeypatch.context() as patch:
        queue_down(patch)  # the event's job is held up (a backlog)
        refused_call(client, crm)
    [row] = events(session)
    assert (row.state, row.attempts) == ("pending", 0)
    make_due(session, row.id, ago=timedelta(minutes=11))
    with app.app_context():
        jobs.resend_stranded()  # queues a second job; it runs first, and fails
        jobs.deliver_webhook(row.id)  # the original job, late: the event is not due
    assert len(receiver.deliveries) == 1
    [row] = events(session)
    assert deliveries(session, row) == [(1, False, 500, "receiver says 500", None)]
    assert row.attempts == 1 and len(scheduled_retries()) == 1  # one chain of retries


def test_a_delivery_under_way_holds_its_event_against_another_job(
    app: Flask,
    client: FlaskClient,
    session: Session,
    provider: HTTPServer,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def receive(request: Request) -> Response:
        # While the receiver holds the first POST, another worker takes the
        # sweep's job for the same event.
        event_id = json.loads(request.get_data())["id"]
        with app.app_context():
            glue = get_session()
            row_id = glue.scalar(select(WebhookEvent.id).where(WebhookEvent.event_id == event_id))
            glue.rollback()
            jobs.deliver_webhook(row_id)
        return Response("ok", status=200)

    receiver.server.clear()
    provider.expect_request(PATH, method="POST").respond_with_handler(receive)
    refused_call(client, crm)
    assert len(provider.log) == 1
    [row] = events(session)
    assert deliveries(session, row) == [(1, False, 200, "ok", None)]
    assert (row.state, row.attempts) == ("delivered", 1)


def sent_to(session: Session, event: WebhookEvent) -> list[str]:
    """The URL each attempt of the event went to, in order."""
    session.commit()
    return list(
        session.scalars(
            select(WebhookDelivery.url)
            .where(WebhookDelivery.webhook_event_id == event.id)
            .order_by(WebhookDelivery.id)
        )
    )


def test_a_removed_webhook_gets_no_more_attempts_and_the_event_fails(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
    runner: FlaskCliRunner,
) -> None:
    receiver.script = [500]
    refused_call(client, crm)
    assert runner.invoke(args=["api-tokens", "webhook", "crm", "--remove"]).exit_code == 0
    run_scheduled_retry(app)  # the retry queued before the removal
    assert len(receiver.deliveries) == 1 and scheduled_retries() == []
    [row] = events(session)
    assert deliveries(session, row) == [
        (1, False, 500, "receiver says 500", None),
        (2, False, None, None, "not sent: the token has no webhook"),
    ]
    assert sent_to(session, row) == [receiver.url, ""]
    assert (row.state, row.next_attempt_at, row.delivered_at) == ("failed", None, None)


def test_a_fixed_url_takes_the_retries_of_events_written_before(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
    runner: FlaskCliRunner,
) -> None:
    typo = "http://127.0.0.1:9/hooks/gleu"
    set_webhook(runner, "crm", typo)
    refused_call(client, crm)
    set_webhook(runner, "crm", receiver.url)  # the operator fixes the typo
    run_scheduled_retry(app)
    [row] = events(session)
    assert [d[2:] for d in deliveries(session, row)] == [
        (None, None, "not delivered: ConnectionError"),
        (200, json.dumps({"received": row.event_id}), None),
    ]
    assert sent_to(session, row) == [typo, receiver.url]
    assert (row.state, row.url) == ("delivered", typo)  # first addressed to the typo
    assert receiver.types() == ["call.refused"]


@contextmanager
def trickling_receiver(head: bytes, trickle: bytes, every: float) -> Iterator[str]:
    """A receiver on a raw socket: it reads the POST, sends `head` at once, then
    `trickle` one byte every `every` seconds (an HTTP server would not)."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            header, _, body = request.partition(b"\r\n\r\n")
            [length] = [
                int(line.split(b":")[1])
                for line in header.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            ]
            while len(body) < length:
                body += conn.recv(4096)
            try:
                conn.sendall(head)
                for byte in trickle:
                    if done.wait(every):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:  # Glue hung up
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}{PATH}"
    finally:
        done.set()
        server.close()
        thread.join(5)


def test_an_answer_trickled_is_read_until_the_timeout_only(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
    runner: FlaskCliRunner,
) -> None:
    app.config["WEBHOOK_TIMEOUT"] = 0.5
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 200\r\n\r\n"
    with trickling_receiver(head, b"x" * 200, every=0.05) as url:  # 10 s of body
        set_webhook(runner, "crm", url)
        started = time.monotonic()
        refused_call(client, crm)
        took = time.monotonic() - started
    [row] = events(session)
    [(attempt, _, status, excerpt, error)] = deliveries(session, row)
    assert (attempt, status, error, row.state) == (1, 200, None, "delivered")
    assert excerpt is not None and 0 < len(excerpt) < 200 and set(excerpt) == {"x"}
    assert took < 2.5


def test_headers_trickled_past_the_timeout_are_no_answer(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
    runner: FlaskCliRunner,
) -> None:
    app.config["WEBHOOK_TIMEOUT"] = 0.5
    rest = b"X-Pad: " + b"a" * 20 + b"\r\nContent-Length: 2\r\n\r\nok"
    with trickling_receiver(b"HTTP/1.1 200 OK\r\n", rest, every=0.05) as url:  # 2.5 s
        set_webhook(runner, "crm", url)
        refused_call(client, crm)
    [row] = events(session)
    [(attempt, _, status, excerpt, error)] = deliveries(session, row)
    assert (attempt, status, excerpt, error) == (1, None, None, "no answer within 0.5 s")
    assert row.state == "pending" and len(scheduled_retries()) == 1


def test_an_http_url_is_not_posted_to_unless_allowed(
    app: Flask,
    client: FlaskClient,
    session: Session,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    app.config["WEBHOOK_ALLOW_HTTP"] = False  # set while it was allowed
    refused_call(client, crm)
    [row] = events(session)
    [(_, _, status, _, error)] = deliveries(session, row)
    assert status is None and error is not None and error.startswith("not sent: a webhook URL must")
    assert receiver.deliveries == []


# --- the signature a receiver checks ---------------------------------------------


def test_the_documented_check_accepts_glues_signature_only_fresh_and_unaltered(
    client: FlaskClient, receiver: Receiver, crm: dict[str, str], directory: dict[str, int]
) -> None:
    refused_call(client, crm)
    [delivery] = receiver.deliveries
    body, header, secret = delivery.body, delivery.headers["Glue-Signature"], receiver.secret
    verify = documented_verify()
    assert verify(body, header, secret) and signed_by(body, header, secret)

    def sign(timestamp: int, signed_body: bytes = body) -> str:
        import hashlib
        import hmac

        mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + signed_body, hashlib.sha256)
        return f"t={timestamp},v1={mac.hexdigest()}"

    now = int(time.time())
    assert verify(body, sign(now - 290), secret)
    assert not verify(body, sign(now - 310), secret)  # older than the 300 s tolerance
    assert not verify(body, sign(now + 310), secret)
    assert not verify(body.replace(b"refused", b"complete"), header, secret)
    assert not verify(body, header, secret + "x")
    assert not verify(body, header.split(",")[1], secret)  # no t
    # Two v1 values (a secret being rotated): either may match.
    assert verify(body, f"{sign(now)},v1={'0' * 64}", secret)
    assert not signed_by(body, sign(now - 310), secret)


def test_after_a_rotation_both_secrets_sign_for_a_day(
    client: FlaskClient,
    session: Session,
    runner: FlaskCliRunner,
    receiver: Receiver,
    crm: dict[str, str],
    directory: dict[str, int],
) -> None:
    old = receiver.secret
    rotated = runner.invoke(args=["api-tokens", "webhook-secret", "crm", "--rotate"])
    new = rotated.output.strip()
    assert rotated.exit_code == 0 and new.startswith("whsec_") and new != old
    refused_call(client, crm)  # the receiver still checks with the old secret
    [during] = receiver.deliveries
    header = during.headers["Glue-Signature"]
    assert header.count(",v1=") == 2 and during.valid
    verify = documented_verify()
    assert verify(during.body, header, new) and verify(during.body, header, old)
    assert signed_by(during.body, header, new) and signed_by(during.body, header, old)

    session.commit()
    session.execute(
        update(ApiToken).values(
            webhook_secret_rotated_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=25)
        )
    )
    session.commit()
    receiver.secret = new  # the receiver took the new one; the old one is over
    refused_call(client, crm)
    after = receiver.deliveries[1]
    assert after.headers["Glue-Signature"].count(",v1=") == 1 and after.valid
    assert not verify(after.body, after.headers["Glue-Signature"], old)


# --- the secret and the URL, set by the CLI --------------------------------------


def test_the_cli_sets_the_url_shows_and_rotates_the_secret_never_storing_or_logging_it(
    app: Flask,
    runner: FlaskCliRunner,
    session: Session,
    crm: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    refused = runner.invoke(args=["api-tokens", "webhook", "crm", "http://crm.example/hooks"])
    assert refused.exit_code != 0 and "must be https" in refused.output
    for bad in ("ftp://crm.example/x", "https://user:pw@crm.example/x", "crm.example/x"):
        result = runner.invoke(args=["api-tokens", "webhook", "crm", bad])
        assert result.exit_code != 0, bad
    unknown = runner.invoke(args=["api-tokens", "webhook", "nobody", "https://crm.example/x"])
    assert "no token named nobody" in unknown.output

    secret = set_webhook(runner, "crm", "https://crm.example/hooks/glue")
    assert secret.startswith("whsec_") and len(secret) > 40
    shown = runner.invoke(args=["api-tokens", "webhook-secret", "crm"])
    assert shown.output.strip() == secret
    rotated = runner.invoke(args=["api-tokens", "webhook-secret", "crm", "--rotate"])
    assert rotated.output.strip().startswith("whsec_") and rotated.output.strip() != secret
    again = runner.invoke(args=["api-tokens", "webhook-secret", "crm"]).output.strip()
    assert again == rotated.output.strip()

    session.commit()
    row = session.scalars(select(ApiToken)).one()
    assert (row.webhook_url, row.webhook_secret_generation) == ("https://crm.example/hooks/glue", 2)
    stored = json.dumps({c.name: str(getattr(row, c.name)) for c in ApiToken.__table__.columns})
    assert secret not in stored and again not in stored and "whsec_" not in stored
    assert "whsec_" not in caplog.text

    removed = runner.invoke(args=["api-tokens", "webhook", "crm", "--remove"])
    assert removed.exit_code == 0
    session.commit()
    session.refresh(row)
    assert row.webhook_url is None
    assert runner.invoke(args=["api-tokens", "webhook", "crm"]).exit_code != 0  # URL or --remove
