"""Verification calls: a one-time code read to the user's phone (typed back on
the web page or through the API), and IfbyPhone click-to-SurVo. The provider is
a real local HTTP server; the test fetches the voice document as it would."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calls import tokens
from app.models import CallAction, OneTimeCode, PhoneNumber, utcnow
from tests.calls.web_client import API_KEY, dashboard_token, sign_in
from tests.conftest import TEST_SECRETS

IFBYPHONE_ENDPOINT = "/click_to_xyz.php"


def sent_form(server: HTTPServer) -> dict[str, str]:
    request, _ = server.log[-1]
    return {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}


def voice_document(client: FlaskClient, url: str) -> etree._Element:
    """What the provider fetches when the user answers."""
    return etree.fromstring(client.post(urlsplit(url).path).data)


def spoken_code(document: etree._Element) -> str:
    said = document.findtext("Say") or ""
    return "".join(ch for ch in said if ch.isdigit())


def test_a_code_call_confirms_the_phone_typed_back_on_the_web_page(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    csrf = dashboard_token(client)
    confirm = client.post("/phone/confirm", data={"csrf_token": csrf})
    assert confirm.status_code == 302 and "/phone/confirm/" in confirm.location

    form = sent_form(provider)
    assert form["to"] == "13125550101" and form["apikey"] == API_KEY
    assert form["url"].startswith("https://glue.example.com/calls/voice/")
    session.commit()  # see what the request wrote
    action = session.scalars(select(CallAction)).one()
    assert (action.purpose, action.from_number, action.to_number) == (
        "verify_phone",
        "+13125550101",
        None,
    )
    assert "***" in str(action.params_sent) and API_KEY not in str(action.params_sent)

    document = voice_document(client, form["url"])
    code = spoken_code(document)
    assert len(code) == 6
    replay = voice_document(client, form["url"])  # anyone fetching it again hears nothing
    assert [el.tag for el in replay] == ["Hangup"]

    entry = client.get(confirm.location)
    wrong = "000000" if code != "000000" else "111111"
    refused = client.post(confirm.location, data={"csrf_token": csrf, "code": wrong})
    assert "That is not the code" in refused.get_data(as_text=True)
    done = client.post(confirm.location, data={"csrf_token": csrf, "code": code})
    assert done.status_code == 302 and entry.status_code == 200
    session.commit()
    phone = session.scalars(select(PhoneNumber).where(PhoneNumber.e164 == "+13125550101")).one()
    assert phone.confirmed_at is not None
    record = session.scalars(select(OneTimeCode)).one()
    assert (record.tries_left, record.used_at is not None) == (3, True)
    assert code not in str({c.name: getattr(record, c.name) for c in OneTimeCode.__table__.columns})


def test_another_user_cannot_open_someone_elses_code(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    csrf = dashboard_token(client)
    confirm = client.post("/phone/confirm", data={"csrf_token": csrf})
    client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "1002")
    assert client.get(confirm.location).status_code == 404


def test_the_api_starts_a_code_call_and_checks_the_code(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    token = tokens.create(session, "crm")
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    started = client.post("/api/v1/users/1001/verifications", json={"method": "code"}, headers=auth)
    assert started.status_code == 202
    code_id = started.get_json()["id"]
    code = spoken_code(voice_document(client, sent_form(provider)["url"]))
    url = f"/api/v1/users/1001/verifications/{code_id}"
    wrong = "000000" if code != "000000" else "111111"
    assert client.post(url, json={"code": wrong}, headers=auth).get_json()["error"] == "wrong"
    assert client.post(url, json={"code": code}, headers=auth).get_json() == {
        "outcome": "confirmed"
    }
    again = client.post(url, json={"code": code}, headers=auth)
    assert (again.status_code, again.get_json()["error"]) == (410, "used")


def test_an_expired_code_is_refused_through_the_api(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    token = tokens.create(session, "crm")
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    started = client.post("/api/v1/users/1001/verifications", json={"method": "code"}, headers=auth)
    code = spoken_code(voice_document(client, sent_form(provider)["url"]))
    record = session.get(OneTimeCode, started.get_json()["id"])
    assert record is not None
    record.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    url = f"/api/v1/users/1001/verifications/{record.id}"
    assert client.post(url, json={"code": code}, headers=auth).get_json()["error"] == "expired"


@pytest.fixture
def ifbyphone(httpserver: HTTPServer, app: Flask) -> HTTPServer:
    httpserver.expect_request(IFBYPHONE_ENDPOINT).respond_with_data("Call Connected")
    app.config.update(
        IFBYPHONE_API_URL=httpserver.url_for(IFBYPHONE_ENDPOINT), IFBYPHONE_API_KEY="ibp-key"
    )
    return httpserver


def test_a_survo_verification_call_runs_the_verification_flows_survo(
    client: FlaskClient, session: Session, ifbyphone: HTTPServer, directory: dict[str, int]
) -> None:
    token = tokens.create(session, "crm")
    session.commit()
    started = client.post(
        "/api/v1/users/1001/verifications",
        json={"method": "survo"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert started.status_code == 202
    request, _ = ifbyphone.log[-1]
    sent = {**request.args.to_dict(), **request.form.to_dict()}
    session.commit()
    assert (sent["app"], sent["survo_id"], sent["phone_to_call"]) == ("cts", "4101", "3125550101")
    action = session.scalars(select(CallAction)).one()
    assert sent["p_t"] == f"action|{action.id}"
    assert (action.purpose, action.provider, action.status) == (
        "verify_survo",
        "ifbyphone",
        "connected",
    )


def test_the_survo_verification_result_comes_back_to_the_call(
    client: FlaskClient, session: Session, ifbyphone: HTTPServer, directory: dict[str, int]
) -> None:
    token = tokens.create(session, "crm")
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    started = client.post(
        "/api/v1/users/1001/verifications", json={"method": "survo"}, headers=auth
    )
    action_id = started.get_json()["call"]["id"]
    # The SurVo runs on the user's phone and posts its answers, with the p_t Glue gave it.
    client.post(
        f"/ifbyphone/verify_caller?key={TEST_SECRETS['IFBYPHONE_SECRET']}",
        data={
            "session_id": "s-v",
            "caller_id": "3125550101",
            "account": "1001",
            "pin": "2468",
            "p_t": f"action|{action_id}",
        },
    )
    view = client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()
    assert view["verification"] == "verified"
