"""Calls placed through Twilio by the real job, against a local HTTP server
standing in for Twilio's REST API, on SQLite and PostgreSQL: what Twilio
receives, the TwiML Glue serves for the second leg, the signed status
callbacks that follow, and a refusal recorded on the action."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from pytest_httpserver import HTTPServer
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from app.config import DEFAULTS
from app.directory.pins import get_hasher
from app.models import CallAction, User
from app.outbound import codes, jobs, service
from app.outbound.destinations import DestinationPolicy
from tests.helpers.directory import add_user
from tests.helpers.settings import TEST_SECRETS

ADA_PHONE = "+13125550101"  # rung first
GRACE_PHONE = "+13125550102"  # then dialled by Glue's TwiML
ORIGINATOR = "+13125550199"  # a number of the Twilio account
PUBLIC_URL = "https://glue.example.com"
SID = "AC" + "a" * 32
CALLS = f"/2010-04-01/Accounts/{SID}/Calls.json"
CALL_SID = "CA" + "b" * 32
TOKEN = TEST_SECRETS["TWILIO_AUTH_TOKEN"]

# The shipped destination policy: the tests' numbers are all callable.
SHIPPED = DestinationPolicy.from_config(DEFAULTS)


@pytest.fixture(autouse=True)
def twilio(app: Flask, httpserver: HTTPServer, immediate_jobs: None) -> HTTPServer:
    jobs.huey.flush()
    app.config.update(
        CALL_PROVIDER="twilio",
        TWILIO_API_URL=httpserver.url_for("/"),
        TWILIO_ACCOUNT_SID=SID,
        ORIGINATOR_NUMBER=ORIGINATOR,
        PUBLIC_URL=PUBLIC_URL,
        CALL_MAX_ATTEMPTS=3,
    )
    return httpserver


@pytest.fixture
def ada(session: Session) -> User:
    add_user(session, "1002", "Grace Hopper", "1357", GRACE_PHONE)
    return add_user(session, "1001", "Ada Lovelace", "2468", ADA_PHONE)


def place(app: Flask, session: Session, user: User) -> int:
    target = service.resolve_target(session, "user", "1002", originator=ORIGINATOR, region="US")
    action = service.record_call(session, user, target, "twilio", via="api", policy=SHIPPED)
    session.commit()
    with app.app_context():
        result = jobs.place_call(action.id)
        assert result is not None
        result.get()
    return action.id


def action_of(session: Session, action_id: int) -> CallAction:
    session.commit()
    action = session.get(CallAction, action_id)
    assert action is not None
    return action


def form(httpserver: HTTPServer) -> dict[str, list[str]]:
    [(request, _)] = httpserver.log
    return parse_qs(request.get_data(as_text=True))


def status(client: FlaskClient, action_id: int, value: str, **more: str) -> None:
    """A status callback as Twilio sends it: signed with the account's token."""
    path = f"/twiml/status?action={action_id}"
    fields = {"CallSid": CALL_SID, "AccountSid": SID, "CallStatus": value, **more}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + path, fields)
    answer = client.post(path, data=fields, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 204


def test_a_twilio_call_rings_the_user_dials_the_other_and_reports_to_completed(
    app: Flask, client: FlaskClient, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    created: dict[str, Any] = {"sid": CALL_SID, "status": "queued"}
    httpserver.expect_request(CALLS, method="POST").respond_with_json(created, status=201)
    action_id = place(app, session, ada)

    sent = form(httpserver)
    url = sent.pop("Url")[0]
    assert sent == {
        "To": [ADA_PHONE],
        "From": [ORIGINATOR],
        "Method": ["POST"],
        "StatusCallback": [f"{PUBLIC_URL}/twiml/status?action={action_id}"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "StatusCallbackMethod": ["POST"],
    }
    assert url.startswith(f"{PUBLIC_URL}/calls/voice/dial/{action_id}/")
    action = action_of(session, action_id)
    assert action.status == "calling"
    assert action.provider_call_ids == [CALL_SID]
    assert action.params_sent["Url"] == "***"  # its token is never kept
    assert TOKEN not in json.dumps([action.params_sent, action.provider_answer, action.detail])

    # Once Ada answers, Twilio fetches Glue's TwiML: it dials Grace.
    document = etree.fromstring(client.post(urlsplit(url).path).data)
    assert document.tag == "Response"
    assert [number.text for number in document.iter("Number")] == [GRACE_PHONE]
    assert document.find("Dial") is not None
    # The same path with another token dials nobody.
    forged = etree.fromstring(client.post(f"/calls/voice/dial/{action_id}/forged").data)
    assert [child.tag for child in forged] == ["Hangup"]

    status(client, action_id, "ringing")
    assert action_of(session, action_id).status == "ringing"
    status(client, action_id, "in-progress")
    assert action_of(session, action_id).status == "connected"
    assert not service.is_final(action_of(session, action_id))  # Twilio reports on
    status(client, action_id, "completed", CallDuration="31")
    action = action_of(session, action_id)
    assert action.status == "completed"
    assert [entry["status"] for entry in service.action_view(action)["statuses"]] == [
        "ringing",
        "in-progress",
        "completed",
    ]
    # The call over, its dial document dials nobody any more.
    late = etree.fromstring(client.post(urlsplit(url).path).data)
    assert [child.tag for child in late] == ["Hangup"]


def test_twilio_refusing_the_number_fails_the_call_for_good(
    app: Flask, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    error = {
        "code": 21211,
        "message": "The 'To' number +13125550101 is not a valid phone number.",
        "status": 400,
    }
    httpserver.expect_request(CALLS, method="POST").respond_with_json(error, status=400)
    action_id = place(app, session, ada)
    action = action_of(session, action_id)
    assert action.status == "failed"
    assert action.attempts == 1  # no retry can cure it
    assert "21211" in (action.detail or "")
    assert json.loads(action.provider_answer or "")["code"] == 21211
    assert jobs.huey.scheduled() == []
    assert len(httpserver.log) == 1


def test_a_twilio_code_call_reads_the_code_in_twiml(
    app: Flask, client: FlaskClient, session: Session, httpserver: HTTPServer, ada: User
) -> None:
    created: dict[str, Any] = {"sid": CALL_SID, "status": "queued"}
    httpserver.expect_request(CALLS, method="POST").respond_with_json(created, status=201)
    app.config["VERIFY_PROVIDER"] = "twilio"
    action = service.record_verification_call(
        session, ada, ADA_PHONE, "twilio", "api", "verify_phone", policy=SHIPPED
    )
    session.flush()
    with app.app_context():
        codes.issue(session, get_hasher(), ada, ADA_PHONE, action)
    session.commit()
    with app.app_context():
        result = jobs.place_call(action.id)
        assert result is not None
        result.get()
    url = form(httpserver)["Url"][0]
    assert url.startswith(f"{PUBLIC_URL}/calls/voice/")
    document = etree.fromstring(client.post(urlsplit(url).path).data)
    assert len(document.findall("Say")) == 2
    assert [pause.get("length") for pause in document.findall("Pause")] == ["1", "1"]
