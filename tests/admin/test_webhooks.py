"""The admin webhook pages through the Flask test client (SQLite and PostgreSQL):
events listed and filtered by token and state, each event's attempts, and the
Replay button (CSRF) sending the same event again to a real local receiver."""

from __future__ import annotations

import phonenumbers
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import tokens
from app.models import AdminAction, User, WebhookDelivery, WebhookEvent
from app.outbound import jobs
from tests.helpers.admin_pages import ADA_PASSWORD, cells, page, rows, text
from tests.helpers.web_client import sign_in, token
from tests.helpers.webhooks import Receiver, set_webhook

LONDON = phonenumbers.format_number(
    phonenumbers.example_number_for_type("GB", phonenumbers.PhoneNumberType.FIXED_LINE),
    phonenumbers.PhoneNumberFormat.E164,
)


@pytest.fixture(autouse=True)
def empty_schedule(immediate_jobs: None) -> None:
    """No scheduled job left over from another test (huey's in-memory storage)."""
    jobs.huey.flush()


@pytest.fixture
def receivers(
    app: Flask, httpserver: HTTPServer, runner: FlaskCliRunner, session: Session
) -> dict[str, tuple[Receiver, dict[str, str]]]:
    """Two host applications, crm and intranet, each with a token and a webhook
    on the local server; crm's receiver fails its first answer."""
    app.config["WEBHOOK_ALLOW_HTTP"] = True
    found = {}
    for name in ("crm", "intranet"):
        value = tokens.create(session, name)
        session.commit()
        receiver = Receiver(httpserver, path=f"/hooks/{name}").listen()
        receiver.secret = set_webhook(runner, name, receiver.url)
        found[name] = (receiver, {"Authorization": f"Bearer {value}"})
    found["crm"][0].script = [500]
    return found


def refused_call(client: FlaskClient, headers: dict[str, str]) -> None:
    """A call the destination policy refuses: one event, `call.refused`."""
    body = {"user": "1001", "target": {"kind": "number", "value": LONDON}}
    assert client.post("/api/v1/calls", json=body, headers=headers).status_code == 422


def event_rows(session: Session) -> list[WebhookEvent]:
    session.commit()  # end the test's read snapshot, to see what requests wrote
    return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def test_events_are_listed_and_filtered_by_token_and_state(
    admin_client: FlaskClient,
    session: Session,
    receivers: dict[str, tuple[Receiver, dict[str, str]]],
) -> None:
    refused_call(admin_client, receivers["crm"][1])  # 500: pending, retried later
    refused_call(admin_client, receivers["intranet"][1])  # delivered
    crm_event, intranet_event = event_rows(session)

    listed = rows(admin_client.get("/admin/webhooks"), "webhook-events")
    assert [cells(row)[1:7] for row in listed] == [
        ["call.refused", str(intranet_event.action_id), "intranet", "delivered", "1", "200"],
        ["call.refused", str(crm_event.action_id), "crm", "pending", "1", "500"],
    ]
    assert [cells(row)[0] for row in listed] == [intranet_event.event_id, crm_event.event_id]

    def listed_ids(query: str) -> list[str]:
        return [
            cells(row)[0]
            for row in rows(admin_client.get(f"/admin/webhooks?{query}"), "webhook-events")
        ]

    assert listed_ids("token=crm") == [crm_event.event_id]
    assert listed_ids("state=delivered") == [intranet_event.event_id]
    assert listed_ids("token=crm&state=delivered") == []
    assert listed_ids("state=bogus") == [intranet_event.event_id, crm_event.event_id]
    form = page(admin_client.get("/admin/webhooks?token=crm"))
    assert form.xpath("//select[@name='token']/option[@selected]/@value") == ["crm"]
    assert form.xpath("//select[@name='token']/option/@value") == ["", "crm", "intranet"]


def test_an_events_page_shows_its_attempts_and_replay_sends_the_same_event(
    admin_client: FlaskClient,
    session: Session,
    receivers: dict[str, tuple[Receiver, dict[str, str]]],
    people: dict[str, User],
) -> None:
    receiver, headers = receivers["crm"]
    refused_call(admin_client, headers)
    [event] = event_rows(session)
    url = f"/admin/webhooks/{event.id}"
    shown = page(admin_client.get(url))
    assert text(shown.xpath("//dd[@class='type']")[0]) == "call.refused"
    assert text(shown.xpath("//dd[@class='state']")[0]) == "pending"
    assert text(shown.xpath("//dd[@class='url']")[0]) == receiver.url
    [attempt] = rows(admin_client.get(url), "webhook-attempts")
    assert cells(attempt)[0] == "1" and cells(attempt)[2] == "500"
    assert cells(attempt)[5] == "receiver says 500" and cells(attempt)[6] == "no"
    assert event.event_id in text(shown.xpath("//pre[@class='body']")[0])

    # Without the form's CSRF token: refused, nothing sent.
    refused = admin_client.post(f"{url}/replay")
    assert refused.status_code == 400
    assert len(receiver.deliveries) == 1

    replayed = admin_client.post(f"{url}/replay", data={"csrf_token": token(admin_client.get(url))})
    assert replayed.status_code == 302 and replayed.location.endswith(url)
    after = admin_client.get(url)
    assert f"Replay of {event.event_id} queued." in after.get_data(as_text=True)
    assert [cells(row)[:3] + cells(row)[6:] for row in rows(after, "webhook-attempts")] == [
        ["1", cells(attempt)[1], "500", "no", receiver.url],
        ["2", cells(rows(after, "webhook-attempts")[1])[1], "200", "yes", receiver.url],
    ]
    # The receiver got the same event (id and bytes) again, signed afresh, and took it.
    first, second = receiver.deliveries
    assert first.body == second.body and second.valid and second.valid_by_own_check
    assert second.headers["Glue-Event-Id"] == event.event_id
    assert receiver.types() == ["call.refused"]
    [event] = event_rows(session)
    assert (event.state, event.attempts) == ("delivered", 2)
    replays = session.scalars(select(WebhookDelivery.replay).order_by(WebhookDelivery.id)).all()
    assert replays == [False, True]
    [action] = session.scalars(select(AdminAction)).all()
    assert (action.user_id, action.action, action.target_kind, action.target_number) == (
        people["ruth"].id,
        "replay_webhook",
        "webhook_event",
        event.event_id,
    )

    # Once more, a delivered event: sent again, the receiver drops it by its id.
    admin_client.post(f"{url}/replay", data={"csrf_token": token(admin_client.get(url))})
    assert receiver.duplicates == [event.event_id]
    assert len(rows(admin_client.get(url), "webhook-attempts")) == 3


def test_a_replay_the_queue_refuses_says_so_and_records_nothing(
    admin_client: FlaskClient,
    session: Session,
    receivers: dict[str, tuple[Receiver, dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver, headers = receivers["crm"]
    refused_call(admin_client, headers)
    [event] = event_rows(session)
    url = f"/admin/webhooks/{event.id}"
    csrf = token(admin_client.get(url))

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("queue unreachable")

    monkeypatch.setattr(jobs.huey, "enqueue", unreachable)  # Redis is down
    answered = admin_client.post(f"{url}/replay", data={"csrf_token": csrf})
    assert answered.status_code == 302 and answered.location.endswith(url)
    shown = page(admin_client.get(url))
    [alert] = shown.xpath("//p[@class='flash error'][@role='alert']")
    assert text(alert) == (
        f"Replay of {event.event_id} not queued: the job queue is unreachable. Try again."
    )
    assert (
        len(receiver.deliveries) == 1 and len(rows(admin_client.get(url), "webhook-attempts")) == 1
    )
    session.commit()
    assert session.scalars(select(AdminAction)).all() == []


def test_the_webhook_pages_are_for_admins_only(
    client: FlaskClient,
    session: Session,
    receivers: dict[str, tuple[Receiver, dict[str, str]]],
    people: dict[str, User],
) -> None:
    refused_call(client, receivers["crm"][1])
    [event] = event_rows(session)
    for path in ("/admin/webhooks", f"/admin/webhooks/{event.id}"):
        assert client.get(path).status_code == 302  # to sign in
    assert sign_in(client, "1001", ADA_PASSWORD).status_code == 302
    for path in ("/admin/webhooks", f"/admin/webhooks/{event.id}"):
        assert client.get(path).status_code == 403
    mine = token(client.get("/"))
    assert (
        client.post(f"/admin/webhooks/{event.id}/replay", data={"csrf_token": mine}).status_code
        == 403
    )
    assert len(receivers["crm"][0].deliveries) == 1


def test_an_unknown_event_is_404(admin_client: FlaskClient) -> None:
    assert admin_client.get("/admin/webhooks/4242").status_code == 404
    csrf = token(admin_client.get("/admin/webhooks"))
    assert (
        admin_client.post("/admin/webhooks/4242/replay", data={"csrf_token": csrf}).status_code
        == 404
    )


def test_the_admin_nav_links_to_the_webhooks(admin_client: FlaskClient) -> None:
    for url in ("/admin/", "/admin/calls"):
        nav = page(admin_client.get(url)).xpath("//nav[@class='admin']//a/@href")
        assert "/admin/webhooks" in nav, url
