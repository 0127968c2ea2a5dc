"""The click-to-call web page through the Flask test client (SQLite and PostgreSQL):
sign-in, CSRF, the directory, the missing-phone prompt, a call placed through a
real local HTTP server acting as DIDforSale, live status and history."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.auth.passwords import hash_password
from app.flows.statuses import RANK
from app.models import CallAction, PhoneNumber, User
from app.outbound import jobs
from app.outbound.web import REPORT_TEXT
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.web_client import (
    API_KEY,
    ENDPOINT,
    PASSWORDS,
    SAME_ANSWER,
    confirm_form,
    dashboard_token,
    form_fields,
    sign_in,
    token,
)


def place(client: FlaskClient, kind: str, value: str) -> TestResponse:
    """Post a Call form of the dashboard's (a fresh one) for that target, offered or not."""
    fields = form_fields(client.get("/"), "/call")
    return client.post("/call", data={**fields, "kind": kind, "value": value})


def page(response: TestResponse) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.get_data(as_text=True))


def text(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def call_buttons(response: TestResponse) -> list[str]:
    return [text(button) for button in page(response).xpath("//main//form//button")]


def action_id(response: TestResponse) -> int:
    match = re.fullmatch(r"/calls/([0-9]+)", urlsplit(response.location).path)
    assert match, response.location
    return int(match.group(1))


def status_callback(client: FlaskClient, action: int, status: str) -> None:
    fields = {
        "callSid": "CA-web-1",
        "CallStatus": status,
        "ParentCallSid": "",
        "Direction": "Outbound",
        "CallbackSource": "call-progress-event",
    }
    query = {"action": str(action), "key": TEST_SECRETS["DIDML_SECRET"]}
    assert client.post("/didml/status", query_string=query, data=fields).status_code == 204


# --- sign-in -------------------------------------------------------------------


def test_sign_in_and_out(client: FlaskClient, directory: dict[str, int]) -> None:
    assert client.get("/").status_code == 302  # to the sign-in page
    assert urlsplit(client.get("/").location).path == "/login"

    signed_in = sign_in(client, "1001")
    assert signed_in.status_code == 302 and signed_in.location == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Ada Lovelace" in text(page(home).xpath("//header")[0])

    out = client.post("/logout", data={"csrf_token": token(home)})
    assert out.status_code == 302 and urlsplit(out.location).path == "/login"
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    ("account", "password"),
    [
        ("1001", "grace-demo-1"),  # wrong password
        ("9999", "ada-demo-1"),  # unknown account
        ("1004", "disabled-1"),  # disabled user, right password
        ("1003", "anything-1"),  # no web password at all
        ("1001", "ADA-DEMO-1"),
    ],
)
def test_a_failed_sign_in_gets_the_same_answer_whatever_the_reason(
    client: FlaskClient, directory: dict[str, int], account: str, password: str
) -> None:
    response = sign_in(client, account, password)
    assert response.status_code == 200
    alerts = [text(p) for p in page(response).xpath("//*[@role='alert']")]
    assert alerts == [SAME_ANSWER]
    assert client.get("/").status_code == 302


def test_sign_in_goes_on_to_a_local_page_only(
    client: FlaskClient, directory: dict[str, int]
) -> None:
    form = client.get("/login")
    data = {"account": "1001", "password": PASSWORDS["1001"], "csrf_token": token(form)}
    evil = client.post("/login?next=//evil.example/x", data=data)
    assert evil.location == "/"
    client.post("/logout", data={"csrf_token": dashboard_token(client)})
    data["csrf_token"] = token(client.get("/login"))
    local = client.post("/login?next=/calls/7", data=data)
    assert local.location == "/calls/7"


def test_a_new_password_signs_out_the_sessions_of_the_old(
    client: FlaskClient, session: Session, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    assert client.get("/").status_code == 200
    ada = session.get(User, directory["1001"])
    assert ada is not None
    ada.password_hash = hash_password("a-new-password")
    session.commit()
    assert client.get("/").status_code == 302


def test_disabling_a_user_signs_them_out(
    client: FlaskClient, session: Session, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    ada = session.get(User, directory["1001"])
    assert ada is not None
    ada.active = False
    session.commit()
    assert client.get("/").status_code == 302


# --- CSRF ------------------------------------------------------------------------


def test_every_form_needs_its_csrf_token(
    client: FlaskClient, session: Session, directory: dict[str, int]
) -> None:
    no_token = client.post("/login", data={"account": "1001", "password": PASSWORDS["1001"]})
    assert no_token.status_code == 400
    assert client.get("/").status_code == 302  # not signed in

    sign_in(client, "1005")
    for path, data in [
        ("/call", {"kind": "group", "value": "500"}),
        ("/call", {"kind": "group", "value": "500", "csrf_token": "forged"}),
        ("/phone", {"phone": "(312) 555-0177", "kind": "group", "value": "500"}),
        ("/logout", {}),
    ]:
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "did not come from this site" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200  # still signed in: logout was refused
    assert session.scalar(select(func.count()).select_from(CallAction)) == 0
    linus = session.get(User, directory["1005"])
    assert linus is not None and linus.phones == []


def test_session_cookie_is_http_only_and_same_site(
    client: FlaskClient, directory: dict[str, int]
) -> None:
    response = sign_in(client, "1001")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --- the dashboard -------------------------------------------------------------------


def test_the_dashboard_lists_the_originator_users_and_groups(
    client: FlaskClient, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    home = client.get("/")
    tree = page(home)
    assert tree.xpath("//main") and tree.xpath("//meta[@name='viewport']")
    sections = {text(h2): text(h2.getparent()) for h2 in tree.xpath("//main//section/h2")}
    assert list(sections) == ["Originator", "People", "Groups", "Your phone", "Your calls"]
    assert "Front desk" in sections["Originator"]
    assert "Grace Hopper 1002" in sections["People"]
    assert "Patrick O'Brien & Sons <x> 1003" in sections["People"]
    assert "Linus Nophone 1005 No phone on file" in sections["People"]
    assert "Ada Lovelace" not in sections["People"]  # not yourself
    assert "Disabled Demo" not in sections["People"]
    assert "Night shift 500" in sections["Groups"]
    assert "+13125550101" in sections["Your phone"]
    assert "No calls yet." in sections["Your calls"]
    assert call_buttons(home) == [
        "Call Front desk",
        "Call Grace Hopper",
        "Call Patrick O'Brien & Sons <x>",
        "Call Night shift",
        "Confirm by a phone call",  # Ada's phone is on file, not yet confirmed
    ]
    # Every visible input has a label (the buttons' forms carry only hidden fields).
    for field in tree.xpath("//input[not(@type='hidden')]"):
        assert tree.xpath(f"//label[@for='{field.get('id')}']")


def test_without_an_originator_number_there_is_no_originator_button(
    client: FlaskClient, app: Flask, directory: dict[str, int]
) -> None:
    app.config["ORIGINATOR_NUMBER"] = ""
    sign_in(client, "1001")
    home = client.get("/")
    assert "Call Originator" not in call_buttons(home)
    assert "No number set up" in home.get_data(as_text=True)


# --- a call ----------------------------------------------------------------------------


def test_a_call_without_a_phone_asks_for_one_then_goes_through(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1005")
    asked = place(client, "group", "500")
    assert asked.status_code == 302
    assert urlsplit(asked.location).path == "/phone"
    assert parse_qs(urlsplit(asked.location).query) == {"kind": ["group"], "value": ["500"]}
    assert session.scalar(select(func.count()).select_from(CallAction)) == 0

    prompt = client.get(asked.location)
    tree = page(prompt)
    assert "Night shift" in text(tree.xpath("//main")[0])
    field = tree.xpath("//input[@name='phone']")[0]
    assert field.get("type") == "tel" and field.get("autocomplete") == "tel"
    assert text(tree.xpath(f"//label[@for='{field.get('id')}']")[0]) == "Your phone number"

    form = {"csrf_token": token(prompt), "kind": "group", "value": "500"}
    invalid = client.post("/phone", data={**form, "phone": "12345"})
    assert invalid.status_code == 200
    field = page(invalid).xpath("//input[@name='phone']")[0]
    assert field.get("aria-invalid") == "true"
    error = page(invalid).xpath(f"//*[@id='{field.get('aria-describedby').split()[-1]}']")[0]
    assert "invalid phone number" in text(error).lower()
    assert session.scalar(select(func.count()).select_from(CallAction)) == 0
    assert not provider.log

    placed = client.post("/phone", data={**form, "phone": "(312) 555-0177"})
    assert placed.status_code == 302
    action = action_id(placed)

    session.commit()  # see what the requests wrote
    phones = session.scalars(
        select(PhoneNumber.e164).where(PhoneNumber.user_id == directory["1005"])
    ).all()
    assert phones == ["+13125550177"]
    row = session.get(CallAction, action)
    assert row is not None
    assert (row.user_id, row.via, row.purpose) == (directory["1005"], "web", "connect")
    assert (row.target_kind, row.target_group_id) == ("group", directory["500"])
    assert (row.from_number, row.to_number) == ("+13125550177", "+13125550500")
    assert (row.provider, row.status, row.attempts) == ("didforsale", "calling", 1)
    assert row.provider_call_ids == ["CA-web-1"]

    assert len(provider.log) == 1
    sent, _ = provider.log[0]
    assert sent.method == "POST" and sent.path == ENDPOINT
    fields = sent.form
    assert fields["apikey"] == API_KEY
    assert fields["to"].endswith("3125550177")  # the user is rung first
    assert fields["from"].endswith("3125550500")  # then connected to Night shift
    callback = urlsplit(fields["statusCallback"])
    assert callback.path == "/didml/status"
    assert parse_qs(callback.query)["action"] == [str(action)]

    status_page = client.get(placed.location)
    assert status_page.status_code == 200
    live = page(status_page).xpath("//*[@id='call-status']")[0]
    assert live.get("aria-live") == "polite"
    assert text(live) == "Calling you…"
    assert page(status_page).xpath("//noscript/meta[@http-equiv='refresh']")
    assert f"/calls/{action}.json" in status_page.get_data(as_text=True)


def test_a_user_with_a_phone_is_called_at_once(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    placed = place(client, "originator", "")
    assert urlsplit(placed.location).path.startswith("/calls/")
    session.commit()
    row = session.get(CallAction, action_id(placed))
    assert row is not None
    assert (row.target_kind, row.from_number, row.to_number) == (
        "originator",
        "+13125550101",
        "+13125550199",
    )
    assert len(provider.log) == 1


def test_a_call_to_a_number_typed_in_is_not_offered(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    for kind, value in [("number", "+13125550177"), ("user", "9999"), ("user", "1005")]:
        refused = place(client, kind, value)
        assert refused.status_code == 302 and refused.location == "/", (kind, value)
    assert session.scalar(select(func.count()).select_from(CallAction)) == 0
    assert not provider.log


def test_a_number_someone_else_has_is_refused(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1005")
    prompt = client.get("/phone?kind=group&value=500")
    data = {"csrf_token": token(prompt), "kind": "group", "value": "500"}
    taken = client.post("/phone", data={**data, "phone": "312-555-0101"})  # Ada's
    assert "registered to someone else" in taken.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(CallAction)) == 0


def test_when_the_queue_is_down_the_action_is_marked_failed(
    client: FlaskClient,
    session: Session,
    provider: HTTPServer,
    directory: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(action_id: int) -> None:
        raise ConnectionError("queue unreachable")

    monkeypatch.setattr(jobs, "place_call", broken)
    sign_in(client, "1001")
    placed = place(client, "group", "500")
    session.commit()
    row = session.get(CallAction, action_id(placed))
    assert row is not None and row.status == "failed"
    assert row.detail == "the call could not be queued (ConnectionError)"
    shown = client.get(placed.location).get_data(as_text=True)
    assert "The call could not be started" in shown and "Failed" in shown
    assert not provider.log


# --- status and history ------------------------------------------------------------


def test_the_status_json_is_for_the_owner_only(
    app: Flask, provider: HTTPServer, directory: dict[str, int]
) -> None:
    ada, grace, anonymous = app.test_client(), app.test_client(), app.test_client()
    sign_in(ada, "1001")
    action = action_id(place(ada, "group", "500"))

    mine = ada.get(f"/calls/{action}.json")
    assert mine.status_code == 200
    view = mine.get_json()
    assert (view["id"], view["status"], view["final"]) == (action, "calling", False)
    assert view["target"] == {"kind": "group", "number": "+13125550500"}
    assert mine.headers["Cache-Control"] == "no-store"

    sign_in(grace, "1002")
    assert grace.get(f"/calls/{action}.json").status_code == 404
    assert grace.get(f"/calls/{action}").status_code == 404
    assert grace.get(f"/calls/{action + 1}.json").status_code == 404
    assert anonymous.get(f"/calls/{action}.json").status_code == 401
    assert anonymous.get(f"/calls/{action}").status_code == 302


def test_status_callbacks_move_the_call_on_and_show_in_the_history(
    client: FlaskClient, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1005")
    prompt = client.get(place(client, "group", "500").location)
    form = {"csrf_token": token(prompt), "kind": "group", "value": "500"}
    action = action_id(client.post("/phone", data={**form, "phone": "(312) 555-0177"}))

    status_callback(client, action, "ringing")
    assert client.get(f"/calls/{action}.json").get_json()["status"] == "ringing"
    status_callback(client, action, "answered")
    view = client.get(f"/calls/{action}.json").get_json()
    # DIDforSale reports the end of the call too: connected is not final yet.
    assert (view["status"], view["final"]) == ("connected", False)
    assert [s["status"] for s in view["statuses"]] == ["ringing", "answered"]

    status_page = page(client.get(f"/calls/{action}"))
    assert text(status_page.xpath("//*[@id='call-status']")[0]) == "Connected"
    assert status_page.xpath("//noscript/meta")  # still watching, without JavaScript too

    entry = page(client.get("/")).xpath(f"//li[@id='call-{action}']")[0]
    assert "Night shift: Connected" in text(entry)
    assert "from +13125550177" in text(entry)
    reports = [text(li) for li in entry.xpath(".//ol[contains(@class, 'statuses')]/li")]
    assert [report.split()[0] for report in reports] == ["Ringing", "Answered"]
    assert all(report.endswith("UTC") for report in reports)

    status_callback(client, action, "completed")
    view = client.get(f"/calls/{action}.json").get_json()
    assert (view["status"], view["final"]) == ("completed", True)
    assert not page(client.get(f"/calls/{action}")).xpath("//noscript/meta")


def test_the_page_shows_glues_words_not_the_providers(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    action = action_id(place(client, "group", "500"))
    for status in ("initiated", "ringing", "answered", "completed"):
        status_callback(client, action, status)
    session.commit()
    row = session.get(CallAction, action)
    assert row is not None and row.detail == "success"  # DIDforSale's answer, kept as sent

    entry = page(client.get("/")).xpath(f"//li[@id='call-{action}']")[0]
    status_page = page(client.get(f"/calls/{action}")).xpath("//main")[0]
    for shown in (entry, status_page):
        assert "success" not in text(shown)
        reports = [text(li) for li in shown.xpath(".//ol[contains(@class, 'statuses')]/li")]
        words = [report.rpartition(" at ")[0] for report in reports]
        assert words == ["Calling", "Ringing", "Answered", "Call ended"]
    assert "Night shift: Call ended" in text(entry)

    # The page's script reads the same texts; the machine values stay beside them.
    view = client.get(f"/calls/{action}.json").get_json()
    assert (view["status"], view["status_text"], view["reason"]) == (
        "completed",
        "Call ended",
        None,
    )
    assert [(s["status"], s["text"]) for s in view["statuses"]] == [
        ("initiated", "Calling"),
        ("ringing", "Ringing"),
        ("answered", "Answered"),
        ("completed", "Call ended"),
    ]


def test_a_failed_call_shows_its_reason(
    client: FlaskClient,
    session: Session,
    httpserver: HTTPServer,
    provider: HTTPServer,
    directory: dict[str, int],
) -> None:
    httpserver.clear()
    httpserver.expect_request(ENDPOINT, method="POST").respond_with_data(
        "Invalid destination number", status=400
    )
    sign_in(client, "1001")
    action = action_id(place(client, "user", "1002"))
    session.commit()
    row = session.get(CallAction, action)
    assert row is not None and row.status in ("failed", "retrying"), row.status

    entry = page(client.get("/")).xpath(f"//li[@id='call-{action}']")[0]
    assert "Reason: " in text(entry) and "Invalid destination number" in text(entry)
    assert client.get(f"/calls/{action}.json").get_json()["reason"] == row.detail


def test_every_status_a_platform_reports_has_words_for_people() -> None:
    assert set(RANK) <= set(REPORT_TEXT)


def test_the_history_is_newest_first_and_only_yours(
    app: Flask, provider: HTTPServer, directory: dict[str, int]
) -> None:
    ada, grace = app.test_client(), app.test_client()
    sign_in(ada, "1001")
    sign_in(grace, "1002")
    first = action_id(place(ada, "group", "500"))
    second = action_id(place(ada, "user", "1002"))
    theirs = action_id(place(grace, "user", "1001"))

    history = page(ada.get("/")).xpath("//ol[@class='history']/li")
    assert [li.get("id") for li in history] == [f"call-{second}", f"call-{first}"]
    assert text(history[0]).startswith("Grace Hopper: Calling you…")
    assert f"call-{theirs}" not in ada.get("/").get_data(as_text=True)


def test_a_phone_confirmation_call_is_named_as_such(
    client: FlaskClient, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    confirm = client.post("/phone/confirm", data=confirm_form(client))
    assert confirm.status_code == 302

    (entry,) = page(client.get("/")).xpath("//ol[@class='history']/li")
    link = entry.xpath(".//a")[0]
    assert text(link) == "Phone confirmation"
    assert text(entry).startswith("Phone confirmation: Calling you…")

    status_page = page(client.get(link.get("href")))
    assert text(status_page.xpath("//h1")[0]) == "Phone confirmation"
    assert text(status_page.xpath("//title")[0]).startswith("Phone confirmation")
    assert text(status_page.xpath("//*[@id='call-about']")[0]) == (
        "Glue calls your phone (+13125550101) and reads you a code, to confirm it is yours."
    )
    assert "?" not in text(status_page.xpath("//main")[0])


def test_the_phone_page_alone_only_stores_a_number(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1005")
    prompt = client.get("/phone?kind=number&value=%2B13125550177")  # not a web target
    assert page(prompt).xpath("//input[@name='kind']")[0].get("value") == ""
    assert call_buttons(prompt)[-1] == "Save"
    saved = client.post("/phone", data={"csrf_token": token(prompt), "phone": "+1 312 555 0177"})
    assert saved.status_code == 302 and saved.location == "/"
    session.commit()
    assert session.scalar(select(func.count()).select_from(CallAction)) == 0
    assert not provider.log
    linus = session.get(User, directory["1005"])
    assert linus is not None and [p.e164 for p in linus.phones] == ["+13125550177"]
    # With a phone on file there is nothing to ask.
    assert client.get("/phone").location == "/"
