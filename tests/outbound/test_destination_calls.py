"""The destination policy where calls are asked for: the JSON API, the web page,
verification calls, the phones users register, and the job that sends. A refused
call is recorded `refused` with its reason and the provider (a real local HTTP
server) receives nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import lxml.html
import phonenumbers
from flask import Flask
from flask.testing import FlaskClient
from phonenumbers import PhoneNumberType
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.auth import tokens
from app.models import CallAction, OneTimeCode, PhoneNumber, User
from app.outbound import jobs, service
from app.outbound.destinations import DestinationPolicy
from tests.helpers.directory import add_group
from tests.helpers.web_client import call_form, confirm_form, sign_in, token

ADA_PHONE = "+13125550101"


def example(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


PREMIUM = example("US", PhoneNumberType.PREMIUM_RATE)  # +1 900 ...
PERSONAL = example("US", PhoneNumberType.PERSONAL_NUMBER)  # +1 500 ...
LONDON = example("GB", PhoneNumberType.FIXED_LINE)
TORONTO = example("CA", PhoneNumberType.FIXED_LINE)


def api(client: FlaskClient, session: Session) -> dict[str, str]:
    value = tokens.create(session, "crm")
    session.commit()
    return {"Authorization": f"Bearer {value}"}


def call_number(client: FlaskClient, headers: dict[str, str], number: str) -> TestResponse:
    body = {"user": "1001", "target": {"kind": "number", "value": number}}
    return client.post("/api/v1/calls", json=body, headers=headers)


def actions(session: Session) -> list[CallAction]:
    session.commit()  # see what the requests wrote
    return list(session.scalars(select(CallAction).order_by(CallAction.id)))


def page(response: TestResponse) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.get_data(as_text=True))


def text(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def set_phone_directly(session: Session, account: str, number: str) -> None:
    """As a directory import may store it: the web page and the API never would."""
    user = session.scalars(select(User).where(User.account_number == account)).one()
    user.phones[0].e164 = number
    session.commit()


# --- the JSON API ----------------------------------------------------------------


def test_the_api_refuses_a_premium_number_with_422_and_records_why(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    headers = api(client, session)
    refused = call_number(client, headers, PREMIUM)
    assert refused.status_code == 422
    body = refused.get_json()
    reason = f"{PREMIUM}: premium-rate numbers are not called"
    assert (body["error"], body["message"]) == ("destination_refused", reason)
    assert body["call"]["status"] == "refused" and body["call"]["final"] is True
    assert body["call"]["target"] == {"kind": "number", "number": PREMIUM}

    [row] = actions(session)
    assert (row.id, row.status, row.detail, row.attempts) == (
        body["call"]["id"],
        "refused",
        reason,
        0,
    )
    assert (row.via, row.from_number, row.to_number) == ("api", ADA_PHONE, PREMIUM)
    assert row.params_sent is None
    assert provider.log == []
    # The call reads back as refused.
    again = client.get(f"/api/v1/calls/{row.id}", headers=headers).get_json()
    assert (again["status"], again["detail"], again["final"]) == ("refused", reason, True)


def test_the_api_refuses_other_countries_unless_allowed(
    app: Flask,
    client: FlaskClient,
    session: Session,
    provider: HTTPServer,
    directory: dict[str, int],
) -> None:
    headers = api(client, session)
    for number, country in ((LONDON, "GB"), (TORONTO, "CA")):
        refused = call_number(client, headers, number)
        assert refused.status_code == 422
        assert refused.get_json()["message"] == f"{number}: numbers in {country} are not called"
    assert provider.log == []

    app.config["CALL_ALLOWED_COUNTRIES"] = "US CA"
    placed = call_number(client, headers, TORONTO)
    assert placed.status_code == 202 and placed.get_json()["status"] != "refused"
    assert call_number(client, headers, LONDON).status_code == 422
    assert [row.status for row in actions(session)] == ["refused", "refused", "calling", "refused"]
    assert len(provider.log) == 1
    assert provider.log[0][0].form["from"] == TORONTO.lstrip("+")


def test_prefixes_allow_and_deny_and_deny_wins(
    app: Flask,
    client: FlaskClient,
    session: Session,
    provider: HTTPServer,
    directory: dict[str, int],
) -> None:
    headers = api(client, session)
    app.config.update(
        CALL_ALLOW_PREFIXES=f"{PREMIUM[:6]} +44",  # +1900 and the UK
        CALL_DENY_PREFIXES="+4420 +1312555017",  # London, and some Chicago numbers
    )
    assert call_number(client, headers, PREMIUM).status_code == 202  # allowed by prefix
    assert call_number(client, headers, LONDON).status_code == 202  # +4412...: allowed
    london_2 = "+442079460000"  # +4420: denied, though +44 allows it
    denied = call_number(client, headers, london_2)
    assert denied.status_code == 422
    assert denied.get_json()["message"] == (
        f"{london_2}: numbers starting with this prefix are not called"
    )
    assert call_number(client, headers, "+13125550177").status_code == 422
    assert call_number(client, headers, "+13125550188").status_code == 202
    rows = actions(session)
    assert [(row.to_number, row.status) for row in rows] == [
        (PREMIUM, "calling"),
        (LONDON, "calling"),
        (london_2, "refused"),
        ("+13125550177", "refused"),
        ("+13125550188", "calling"),
    ]
    assert [request.form["from"] for request, _ in provider.log] == [
        PREMIUM.lstrip("+"),
        LONDON.lstrip("+"),
        "13125550188",
    ]


def test_the_users_own_phone_is_checked_too(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    """The user's phone is rung first: a premium one (stored by an import) refuses the call."""
    headers = api(client, session)
    set_phone_directly(session, "1001", PERSONAL)
    body = {"user": "1001", "target": {"kind": "user", "value": "1002"}}
    refused = client.post("/api/v1/calls", json=body, headers=headers)
    assert refused.status_code == 422
    assert refused.get_json()["message"] == f"{PERSONAL}: personal numbers are not called"
    assert [(row.from_number, row.status) for row in actions(session)] == [(PERSONAL, "refused")]
    assert provider.log == []


def test_the_api_refuses_to_store_a_phone_it_may_not_call(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    headers = api(client, session)
    for number, reason in (
        (PREMIUM, "premium-rate numbers are not called"),
        (LONDON, "numbers in GB are not called"),
    ):
        refused = client.put("/api/v1/users/1005/phone", json={"number": number}, headers=headers)
        assert refused.status_code == 422
        assert refused.get_json() == {
            "error": "destination_refused",
            "message": f"Glue cannot call {number}: {reason}",
        }
    session.commit()
    linus = session.get(User, directory["1005"])
    assert linus is not None and linus.phones == []


def test_verification_calls_to_a_refused_phone_are_not_placed(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    headers = api(client, session)
    set_phone_directly(session, "1001", LONDON)
    url = "/api/v1/users/1001/verifications"
    for method in ("code", "survo"):
        refused = client.post(url, json={"method": method}, headers=headers)
        assert refused.status_code == 422, method
        body = refused.get_json()
        assert body["error"] == "destination_refused" and "id" not in body
        assert body["message"] == f"{LONDON}: numbers in GB are not called"
        assert body["call"]["status"] == "refused"
    rows = actions(session)
    assert [(row.purpose, row.status) for row in rows] == [
        ("verify_phone", "refused"),
        ("verify_survo", "refused"),
    ]
    assert session.scalar(select(func.count()).select_from(OneTimeCode)) == 0
    assert provider.log == []


# --- the web page ----------------------------------------------------------------


def test_the_web_page_shows_why_a_call_was_refused(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    add_group(session, "600", "Hotline", None, PREMIUM)
    sign_in(client, "1001")
    refused = client.post("/call", data=call_form(client, "group", "600"))
    assert refused.status_code == 302 and refused.location.startswith("/calls/")
    [row] = actions(session)
    reason = f"{PREMIUM}: premium-rate numbers are not called"
    assert (row.via, row.status, row.detail) == ("web", "refused", reason)
    assert provider.log == []

    shown = page(client.get(refused.location))
    alert = shown.xpath("//p[contains(@class, 'flash') and contains(@class, 'error')]")
    assert [text(p) for p in alert] == [f"That call was not placed: {reason}."]
    assert text(shown.xpath("//*[@id='call-status']")[0]) == "Refused"
    assert text(shown.xpath("//*[@id='call-detail']")[0]) == reason
    assert not shown.xpath("//noscript/meta[@http-equiv='refresh']")  # nothing more will happen
    status = client.get(f"/calls/{row.id}.json").get_json()
    assert (status["status"], status["status_text"], status["reason"]) == (
        "refused",
        "Refused",
        reason,
    )
    entry = page(client.get("/")).xpath(f"//li[@id='call-{row.id}']")[0]
    assert f"Reason: {reason}" in text(entry)


def test_a_phone_registered_on_the_web_page_is_checked(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1005")
    prompt = client.get("/phone?kind=group&value=500")
    form = {"csrf_token": token(prompt), "kind": "group", "value": "500"}
    for typed, message in (
        ("1-900-234-5678", f"Glue cannot call {PREMIUM}: premium-rate numbers are not called."),
        ("+44 121 234 5678", f"Glue cannot call {LONDON}: numbers in GB are not called."),
    ):
        answer = client.post("/phone", data={**form, "phone": typed})
        assert answer.status_code == 200
        field = page(answer).xpath("//input[@name='phone']")[0]
        assert field.get("aria-invalid") == "true"
        error_id = field.get("aria-describedby").split()[-1]
        assert text(page(answer).xpath(f"//*[@id='{error_id}']")[0]) == message
    session.commit()
    assert (
        session.scalar(
            select(func.count())
            .select_from(PhoneNumber)
            .where(PhoneNumber.user_id == directory["1005"])
        )
        == 0
    )
    assert actions(session) == [] and provider.log == []

    placed = client.post("/phone", data={**form, "phone": "(312) 555-0177"})
    assert placed.status_code == 302 and len(provider.log) == 1


def test_a_confirmation_call_to_a_refused_phone_is_not_placed(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    set_phone_directly(session, "1001", PREMIUM)
    sign_in(client, "1001")
    refused = client.post("/phone/confirm", data=confirm_form(client))
    assert refused.status_code == 302 and refused.location.startswith("/calls/")
    [row] = actions(session)
    assert (row.purpose, row.status) == ("verify_phone", "refused")
    assert session.scalar(select(func.count()).select_from(OneTimeCode)) == 0
    assert provider.log == []
    shown = page(client.get(refused.location))
    assert text(shown.xpath("//*[@id='call-status']")[0]) == "Refused"


# --- the job that sends ----------------------------------------------------------


def test_the_job_checks_again_before_sending(
    app: Flask, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    """A call recorded while its number was allowed, then denied before the job
    ran (a scheduled call, a queue that was behind): nothing is sent."""
    ada = session.get(User, directory["1001"])
    assert ada is not None
    target = service.resolve_target(session, "group", "500", originator="", region="US")
    action = service.record_call(
        session,
        ada,
        target,
        "didforsale",
        via="api",
        policy=DestinationPolicy.from_config(app.config),
    )
    session.commit()
    assert action.status == "queued"

    app.config["CALL_DENY_PREFIXES"] = "+13125550500"
    with app.app_context():
        jobs.place_call(action.id)
    [row] = actions(session)
    assert (row.status, row.attempts) == ("refused", 0)
    assert row.detail == "+13125550500: numbers starting with this prefix are not called"
    assert provider.log == []
