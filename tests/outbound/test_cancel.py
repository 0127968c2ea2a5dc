"""Cancelling calls (`DELETE /api/v1/calls/<id>`, the Cancel button) and scheduled
calls (`at`), through the real job (huey in immediate mode, its schedule read as
the consumer reads it) against a real local HTTP server acting as DIDforSale, on
SQLite and PostgreSQL: what the provider receives (nothing, for a call cancelled
in time), what the action records, and the API's and the page's answers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.auth import tokens
from app.auth.passwords import hash_password
from app.config import DEFAULTS
from app.models import ApiToken, CallAction, User
from app.outbound import jobs, service
from app.outbound.destinations import DestinationPolicy
from tests.helpers.directory import add_user
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.web_client import PASSWORDS, sign_in, token

ADA_PHONE = "+13125550101"
GRACE_PHONE = "+13125550102"
CALL = {"user": "1001", "target": {"kind": "user", "value": "1002"}}

# The shipped destination policy: the tests' numbers are all callable.
SHIPPED = DestinationPolicy.from_config(DEFAULTS)


@pytest.fixture(autouse=True)
def empty_schedule(immediate_jobs: None) -> None:
    """No scheduled job left over from another test (huey's in-memory storage)."""
    jobs.huey.flush()


@pytest.fixture
def ada(session: Session) -> User:
    """Ada (who places the calls, and signs in) and Grace (whom she calls)."""
    add_user(session, "1002", "Grace Hopper", "1357", GRACE_PHONE)
    ada = add_user(session, "1001", "Ada Lovelace", "2468", ADA_PHONE)
    ada.password_hash = hash_password(PASSWORDS["1001"])
    session.commit()
    return ada


def bearer(session: Session, name: str = "crm") -> dict[str, str]:
    value = tokens.create(session, name)
    session.commit()
    return {"Authorization": f"Bearer {value}"}


def queued(session: Session, user: User, token_name: str | None = None) -> int:
    """A call recorded (queued) and not yet delivered to the job: as it is between
    the request that recorded it and the worker taking it off the queue. Started
    by the token `token_name`, else by the web page."""
    target = service.resolve_target(session, "user", "1002", originator="", region="US")
    via = "web" if token_name is None else "api"
    action = service.record_call(session, user, target, "didforsale", via=via, policy=SHIPPED)
    if token_name is not None:
        action.api_token_id = session.scalar(select(ApiToken.id).where(ApiToken.name == token_name))
    session.commit()
    return action.id


def deliver(app: Flask, session: Session, action_id: int) -> None:
    """Deliver the place_call job once; fail the test if the job raised."""
    session.commit()
    with app.app_context():
        result = jobs.place_call(action_id)
        assert result is not None
        result.get()


def row(session: Session, action_id: int) -> CallAction:
    session.commit()  # see what requests and jobs wrote
    action = session.get(CallAction, action_id)
    assert action is not None
    return action


def utcnow() -> datetime:
    """Now as huey writes its etas: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def schedule() -> list[tuple[tuple[Any, ...], datetime]]:
    """The jobs waiting in huey's schedule: (args, eta)."""
    return [(tuple(task.args), task.eta) for task in jobs.huey.scheduled()]


def due_now() -> list[tuple[Any, ...]]:
    """Take the jobs whose eta has passed off the schedule, as the consumer does."""
    return [tuple(task.args) for task in jobs.huey.read_schedule(utcnow())]


def wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - utcnow()).total_seconds()) + 0.05)


# --- cancel through the API ------------------------------------------------------


def test_a_queued_call_cancelled_through_the_api_sends_nothing(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    headers = bearer(session)
    action_id = queued(session, ada, "crm")

    cancelled = client.delete(f"/api/v1/calls/{action_id}", headers=headers)

    assert cancelled.status_code == 200
    body = cancelled.get_json()
    assert (body["id"], body["status"], body["final"]) == (action_id, "cancelled", True)
    assert body["cancel"]["by"] == "api token crm"
    assert body["cancel"]["result"] == service.NOTHING_SENT
    deliver(app, session, action_id)  # the job comes after: it finds nothing to place
    action = row(session, action_id)
    assert (action.status, action.attempts, action.params_sent) == ("cancelled", 0, None)
    assert action.cancel_requested_by == "api token crm"
    assert action.cancel_requested_at is not None
    assert abs(action.cancel_requested_at - utcnow()) < timedelta(minutes=1)
    assert provider.log == []


def test_the_job_that_claimed_the_call_first_wins(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    # The job claimed the call (queued -> calling) and DIDforSale took it: the
    # cancel finds it in progress, and DIDforSale has no way to end a call.
    headers = bearer(session)
    action_id = queued(session, ada, "crm")
    deliver(app, session, action_id)
    assert len(provider.log) == 1

    refused = client.delete(f"/api/v1/calls/{action_id}", headers=headers)

    assert refused.status_code == 409
    assert refused.get_json() == {
        "error": "cannot_cancel",
        "message": "provider cannot cancel: didforsale has no way to end a call in progress",
    }
    action = row(session, action_id)
    assert (action.status, action.provider_call_ids) == ("calling", ["CA-web-1"])
    assert action.cancel_requested_by == "api token crm"
    assert action.cancel_result is not None and "provider cannot cancel" in action.cancel_result
    view = client.get(f"/api/v1/calls/{action_id}", headers=headers).get_json()
    assert view["cancel"]["result"] == action.cancel_result
    assert view["status"] == "calling"
    assert len(provider.log) == 1  # nothing more was sent


def race(app: Flask, headers: dict[str, str], action_id: int) -> list[int]:
    """The job and a DELETE for one call, let go at the same moment; the DELETE's
    status code (the test fails if either raised)."""
    start = threading.Barrier(2)
    answers: list[int] = []
    errors: list[BaseException] = []

    def job() -> None:
        start.wait()
        with app.app_context():
            jobs.place_call(action_id).get()  # type: ignore[union-attr]

    def cancel() -> None:
        start.wait()
        response = app.test_client().delete(f"/api/v1/calls/{action_id}", headers=headers)
        answers.append(response.status_code)

    def guarded(work: Any) -> Any:
        def run() -> None:
            try:
                work()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(job)), threading.Thread(target=guarded(cancel))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    return answers


def test_a_cancel_racing_the_job_either_withdraws_the_call_or_finds_it_placed(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    # The job and the cancel each claim the row by a conditional update: whichever
    # comes first wins, and never both (a call sent AND reported cancelled unsent).
    headers = bearer(session)
    for _ in range(4):
        sent_before = len(provider.log)
        action_id = queued(session, ada, "crm")

        answers = race(app, headers, action_id)

        action = row(session, action_id)
        sent = len(provider.log) - sent_before
        if action.status == "cancelled":
            assert (answers, sent, action.attempts) == ([200], 0, 0)
            assert action.cancel_result == service.NOTHING_SENT
        else:
            assert (answers, sent, action.status) == ([409], 1, "calling")


def test_cancelling_a_final_call_is_409_and_changes_nothing(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    headers = bearer(session)
    action_id = queued(session, ada, "crm")
    assert client.delete(f"/api/v1/calls/{action_id}", headers=headers).status_code == 200
    before = row(session, action_id)
    seen = (before.status, before.cancel_requested_at, before.cancel_result)

    again = client.delete(f"/api/v1/calls/{action_id}", headers=headers)

    assert again.status_code == 409
    assert again.get_json()["error"] == "already_final"
    after = row(session, action_id)
    assert (after.status, after.cancel_requested_at, after.cancel_result) == seen


def test_a_call_that_ended_cannot_be_cancelled(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    headers = bearer(session)
    action_id = queued(session, ada, "crm")
    deliver(app, session, action_id)
    action = row(session, action_id)
    action.status = "completed"  # as DIDforSale's status callbacks leave it
    session.commit()

    refused = client.delete(f"/api/v1/calls/{action_id}", headers=headers)

    assert (refused.status_code, refused.get_json()["error"]) == (409, "already_final")
    action = row(session, action_id)
    assert (action.status, action.cancel_requested_at) == ("completed", None)


def test_only_the_token_that_started_a_call_may_cancel_it(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    mine, theirs = bearer(session, "crm"), bearer(session, "erp")
    action_id = queued(session, ada, "crm")
    web_call = queued(session, ada)  # the web page's: no token's

    for call, headers in [(action_id, theirs), (web_call, mine), (action_id + 1000, mine)]:
        refused = client.delete(f"/api/v1/calls/{call}", headers=headers)
        assert (refused.status_code, refused.get_json()["error"]) == (404, "not_found")
    unauthenticated = client.delete(f"/api/v1/calls/{action_id}")
    assert unauthenticated.status_code == 401

    for call in (action_id, web_call):
        action = row(session, call)
        assert (action.status, action.cancel_requested_at) == ("queued", None)
    assert provider.log == []


def test_a_status_report_after_a_cancel_does_not_undo_it(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    headers = bearer(session)
    action_id = queued(session, ada, "crm")
    assert client.delete(f"/api/v1/calls/{action_id}", headers=headers).status_code == 200
    report = {"callSid": "CA-late", "CallStatus": "completed", "ParentCallSid": ""}
    query = {"action": str(action_id), "key": TEST_SECRETS["DIDML_SECRET"]}
    assert client.post("/didml/status", query_string=query, data=report).status_code == 204

    assert row(session, action_id).status == "cancelled"


# --- scheduled calls -------------------------------------------------------------


def test_a_scheduled_call_is_placed_at_its_time_and_not_before(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    headers = bearer(session)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    written = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")

    started = client.post("/api/v1/calls", json={**CALL, "at": written}, headers=headers)

    assert started.status_code == 202
    body = started.get_json()
    assert (body["status"], body["final"]) == ("scheduled", False)
    assert body["scheduled_for"] == at.replace(tzinfo=None).isoformat() + "Z"
    action_id = body["id"]
    assert row(session, action_id).scheduled_for == at.replace(tzinfo=None)
    assert schedule() == [((action_id,), at.replace(tzinfo=None))]  # huey's eta: its time
    assert due_now() == []  # not due yet
    assert provider.log == []

    # Delivered early anyway: nothing is sent, and it goes back on the schedule.
    jobs.huey.flush()
    deliver(app, session, action_id)
    assert provider.log == []
    assert row(session, action_id).status == "scheduled"
    assert schedule() == [((action_id,), at.replace(tzinfo=None))]

    wait_until(at.replace(tzinfo=None))
    assert due_now() == [(action_id,)]
    deliver(app, session, action_id)

    assert len(provider.log) == 1
    sent = provider.log[0][0].form
    assert (sent["to"], sent["from"]) == ("13125550101", "13125550102")
    action = row(session, action_id)
    assert (action.status, action.attempts) == ("calling", 1)


def test_a_scheduled_call_cancelled_in_time_never_reaches_the_provider(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    headers = bearer(session)
    at = datetime.now(UTC) + timedelta(seconds=1)
    started = client.post(
        "/api/v1/calls",
        json={**CALL, "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z")},
        headers=headers,
    )
    action_id = started.get_json()["id"]

    cancelled = client.delete(f"/api/v1/calls/{action_id}", headers=headers)

    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    wait_until(at.replace(tzinfo=None))
    assert due_now() == [(action_id,)]  # its time came: the worker delivers it
    deliver(app, session, action_id)
    assert provider.log == []
    action = row(session, action_id)
    assert (action.status, action.attempts) == ("cancelled", 0)


def test_at_keeps_its_offset(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    headers = bearer(session)
    at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    local = at.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    assert local.endswith("+05:30")

    body = client.post("/api/v1/calls", json={**CALL, "at": local}, headers=headers).get_json()

    assert body["scheduled_for"] == at.replace(tzinfo=None).isoformat() + "Z"
    assert schedule() == [((body["id"],), at.replace(tzinfo=None))]


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2026-12-07T15:00:00", "offset"),
        ("next tuesday", "ISO 8601"),
        (1765119600, "ISO 8601"),
        ("2001-01-01T00:00:00Z", "future"),
        ("2999-01-01T00:00:00Z", "within 30 days"),
    ],
)
def test_a_bad_at_is_400_and_records_nothing(
    client: FlaskClient, session: Session, provider: HTTPServer, ada: User, at: Any, message: str
) -> None:
    headers = bearer(session)
    refused = client.post("/api/v1/calls", json={**CALL, "at": at}, headers=headers)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_at"
    assert message in refused.get_json()["message"]
    assert session.scalar(select(func.count()).select_from(CallAction)) == 0
    assert schedule() == [] and provider.log == []


# --- the Cancel button ----------------------------------------------------------


def page(response: TestResponse) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.get_data(as_text=True))


def text(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def test_the_cancel_button_cancels_a_queued_call(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    action_id = queued(session, ada)
    sign_in(client, "1001")
    call_page = client.get(f"/calls/{action_id}")
    [form] = page(call_page).xpath("//form[@id='call-cancel-form']")
    assert form.get("action") == f"/calls/{action_id}/cancel"
    assert text(form.xpath(".//button")[0]) == "Cancel the call"

    done = client.post(f"/calls/{action_id}/cancel", data={"csrf_token": token(call_page)})

    assert done.status_code == 302 and done.location.endswith(f"/calls/{action_id}")
    shown = page(client.get(done.location))
    assert text(shown.xpath("//*[@id='call-status']")[0]) == "Cancelled"
    assert "The call is cancelled." in text(shown.xpath("//p[contains(@class, 'flash')]")[0])
    assert "nothing was sent" in text(shown.xpath("//*[@id='call-cancel']")[0])
    assert shown.xpath("//form[@id='call-cancel-form']") == []  # final: no button
    action = row(session, action_id)
    assert (action.status, action.cancel_requested_by) == ("cancelled", "user 1001")
    deliver(app, session, action_id)
    assert provider.log == []


def test_the_cancel_button_shows_the_provider_cannot_end_a_call_in_progress(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    action_id = queued(session, ada)
    deliver(app, session, action_id)
    sign_in(client, "1001")
    call_page = client.get(f"/calls/{action_id}")

    done = client.post(f"/calls/{action_id}/cancel", data={"csrf_token": token(call_page)})

    shown = page(client.get(done.location))
    flash = text(shown.xpath("//p[contains(@class, 'flash')]")[0])
    assert flash.startswith("The call could not be cancelled: provider cannot cancel")
    assert text(shown.xpath("//*[@id='call-status']")[0]) == "Calling you…"
    action = row(session, action_id)
    assert action.status == "calling"
    assert action.cancel_result is not None and "provider cannot cancel" in action.cancel_result


def test_the_cancel_button_needs_its_csrf_token_and_your_own_call(
    app: Flask, client: FlaskClient, session: Session, provider: HTTPServer, ada: User
) -> None:
    grace = session.scalar(select(User).where(User.account_number == "1002"))
    assert grace is not None
    grace.password_hash = hash_password(PASSWORDS["1002"])
    session.commit()
    action_id = queued(session, ada)

    sign_in(client, "1001")
    forged = client.post(f"/calls/{action_id}/cancel", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert client.post(f"/calls/{action_id}/cancel").status_code == 400
    client.post("/logout", data={"csrf_token": token(client.get("/"))})

    sign_in(client, "1002")
    dashboard = client.get("/")
    other = client.post(f"/calls/{action_id}/cancel", data={"csrf_token": token(dashboard)})
    assert other.status_code == 404

    action = row(session, action_id)
    assert (action.status, action.cancel_requested_at) == ("queued", None)
