"""Verification calls: a one-time code read to the user's phone (typed back on
the web page or through the API), and IfbyPhone click-to-SurVo. The provider is
a real local HTTP server; the test fetches the voice document as it would."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from lxml import etree
from pytest_httpserver import HTTPServer
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.auth import tokens
from app.models import (
    Call,
    CallAction,
    CallEvent,
    OneTimeCode,
    PhoneNumber,
    User,
    VerificationAttempt,
    WebhookEvent,
    utcnow,
)
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.web_client import API_KEY, confirm_form, dashboard_token, sign_in
from tests.helpers.webhooks import set_webhook

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
    confirm = client.post("/phone/confirm", data=confirm_form(client))
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
    confirm = client.post("/phone/confirm", data=confirm_form(client))
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
    assert sent["p_t"].startswith(f"action|{action.id}||sig|")
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
            "p_t": sent_form(ifbyphone)["p_t"],
        },
    )
    view = client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()
    assert view["verification"] == "verified"


# --- click-to-SurVo: the result verifies only the user the call was placed for --

HOOK = f"/ifbyphone/verify_caller?key={TEST_SECRETS['IFBYPHONE_SECRET']}"
SAY_SURVO, ASK_SURVO = "4102", "4101"  # survo_forms/verify_caller.yaml's ifbyphone block


def survo_post(client: FlaskClient, session_id: str, p_t: str, **answers: str) -> etree._Element:
    """A SurVo posting back to Glue, as IfbyPhone does; the parsed `<action>`."""
    response = client.post(
        HOOK, data={"session_id": session_id, "caller_id": "3125550101", "p_t": p_t, **answers}
    )
    assert response.status_code == 200 and response.mimetype == "text/xml"
    root = etree.fromstring(response.data)
    assert root.tag == "action"
    return root


def survo_retry(
    client: FlaskClient, session_id: str, reply: etree._Element, **answers: str
) -> etree._Element:
    """After a try that failed (`reply`, its retry message): the SurVo posts back,
    is asked the questions again and posts `answers`, each with Glue's own p_t."""
    said = survo_post(client, session_id, reply.findtext("parameters/p_t") or "")
    assert said.findtext("parameters/id") == ASK_SURVO
    return survo_post(client, session_id, said.findtext("parameters/p_t") or "", **answers)


def start_survo_verification(
    client: FlaskClient, session: Session, ifbyphone: HTTPServer, account: str
) -> tuple[dict[str, str], int, str]:
    """The API asks Glue to call `account`; the auth header, the action and the
    p_t Glue gave IfbyPhone for the call."""
    token = tokens.create(session, "crm")
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    started = client.post(
        f"/api/v1/users/{account}/verifications", json={"method": "survo"}, headers=auth
    )
    assert started.status_code == 202
    return auth, started.get_json()["call"]["id"], sent_form(ifbyphone)["p_t"]


def verification_rows(session: Session, action_id: int) -> list[VerificationAttempt]:
    session.commit()  # see what the requests wrote
    return list(
        session.scalars(
            select(VerificationAttempt)
            .join(Call, Call.id == VerificationAttempt.call_id)
            .where(Call.action_id == action_id)
            .order_by(VerificationAttempt.id)
        )
    )


def test_the_survo_verification_p_t_is_signed(
    client: FlaskClient, session: Session, ifbyphone: HTTPServer, directory: dict[str, int]
) -> None:
    _, action_id, p_t = start_survo_verification(client, session, ifbyphone, "1001")
    pairs = dict(piece.split("|", 1) for piece in p_t.split("||"))
    assert pairs["action"] == str(action_id)
    assert len(pairs["sig"]) >= 22  # 128 bits or more, base64


def test_another_users_account_and_pin_on_a_verification_call_verify_nobody(
    client: FlaskClient, session: Session, ifbyphone: HTTPServer, directory: dict[str, int]
) -> None:
    auth, action_id, p_t = start_survo_verification(client, session, ifbyphone, "1001")
    # Whoever answers Ada's phone keys in Grace's account number and her real PIN.
    reply = survo_post(client, "s-other", p_t, account="1002", pin="1357")
    # Not verified: the retry's message, then the questions again; no transfer.
    assert reply.findtext("app") == "survo"
    assert reply.findtext("parameters/id") == SAY_SURVO
    assert reply.findtext("parameters/user_parameters/message") == (
        "That did not match. Please try again."
    )
    [attempt] = verification_rows(session, action_id)
    assert (attempt.claimed, attempt.user_id, attempt.outcome, attempt.reason) == (
        "1002",
        directory["1001"],
        "rejected",
        "other_account",
    )
    ada, grace = session.get(User, directory["1001"]), session.get(User, directory["1002"])
    assert ada is not None and grace is not None
    # A failed attempt of the user called (from her own phone); Grace untouched.
    assert (ada.owner_failed_attempts, ada.failed_attempts) == (1, 0)
    assert (grace.owner_failed_attempts, grace.failed_attempts, grace.locked_until) == (0, 0, None)
    assert client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()["verification"] is None

    # The next tries of the same call (their p_t is Glue's own) stay bound to Ada.
    for _ in range(2):
        reply = survo_retry(client, "s-other", reply, account="1002", pin="1357")
    # Out of tries: the flow's `failed`, and the verification request failed.
    assert reply.findtext("parameters/user_parameters/message") == "Sorry, we could not verify you."
    view = client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()
    assert view["verification"] == "failed"
    rows = verification_rows(session, action_id)
    assert [(a.claimed, a.user_id, a.reason) for a in rows] == [
        ("1002", directory["1001"], "other_account")
    ] * 3
    session.refresh(grace)
    assert (grace.owner_failed_attempts, grace.failed_attempts, grace.lockouts) == (0, 0, 0)
    call = session.scalars(select(Call).where(Call.platform_call_id == "s-other")).one()
    assert call.action_id == action_id and call.outcome == "failed"


def test_the_user_called_is_verified_by_their_own_account_and_pin(
    client: FlaskClient, session: Session, ifbyphone: HTTPServer, directory: dict[str, int]
) -> None:
    auth, action_id, p_t = start_survo_verification(client, session, ifbyphone, "1001")
    wrong = survo_post(client, "s-own", p_t, account="1001", pin="1111")
    reply = survo_retry(client, "s-own", wrong, account="1001", pin="2468")
    assert reply.findtext("parameters/user_parameters/message") == "Thank you, Ada Lovelace."
    view = client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()
    assert view["verification"] == "verified"
    rows = verification_rows(session, action_id)
    assert [(a.claimed, a.user_id, a.outcome, a.reason) for a in rows] == [
        ("1001", directory["1001"], "rejected", "wrong_pin"),
        ("1001", directory["1001"], "verified", "pin"),
    ]


def test_the_verification_result_is_a_webhook_event_written_with_the_turn(
    app: Flask,
    client: FlaskClient,
    session: Session,
    runner: FlaskCliRunner,
    ifbyphone: HTTPServer,
    directory: dict[str, int],
) -> None:
    """The turn runs on a connection, not a session: the action's result still
    reaches the host application's webhook, in the turn's own transaction."""
    app.config["WEBHOOK_ALLOW_HTTP"] = True
    auth, action_id, p_t = start_survo_verification(client, session, ifbyphone, "1001")
    set_webhook(runner, "crm", ifbyphone.url_for("/hooks/crm"))
    survo_post(client, "s-hook", p_t, account="1001", pin="2468")
    session.commit()  # end the test's snapshot, to see what the turn wrote
    kinds = session.scalars(
        select(WebhookEvent.type)
        .where(WebhookEvent.action_id == action_id)
        .order_by(WebhookEvent.id)
    ).all()
    assert kinds.count("verification.verified") == 1 and kinds[-1] == "verification.verified"
    assert client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()["verification"] == (
        "verified"
    )


@pytest.mark.parametrize(
    "forged", ["action|{id}", "action|{id}||sig|AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
)
def test_a_p_t_glue_did_not_sign_links_no_verification_call(
    client: FlaskClient,
    session: Session,
    ifbyphone: HTTPServer,
    directory: dict[str, int],
    forged: str,
) -> None:
    auth, action_id, _ = start_survo_verification(client, session, ifbyphone, "1001")
    # A request made up to look like the verification call's, with Ada's own PIN.
    reply = survo_post(client, "s-forged", forged.format(id=action_id), account="1001", pin="2468")
    assert reply.findtext("parameters/user_parameters/message") == "Thank you, Ada Lovelace."
    view = client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()
    assert view["verification"] is None
    call = session.scalars(select(Call).where(Call.platform_call_id == "s-forged")).one()
    assert call.action_id is None


def test_a_verification_calls_p_t_links_only_the_first_call_that_brings_it(
    client: FlaskClient, session: Session, ifbyphone: HTTPServer, directory: dict[str, int]
) -> None:
    auth, action_id, p_t = start_survo_verification(client, session, ifbyphone, "1001")
    survo_post(client, "s-first", p_t, account="1001", pin="1111")
    # The same p_t replayed on another call: not the verification call.
    survo_post(client, "s-replay", p_t, account="1001", pin="2468")
    view = client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()
    assert view["verification"] is None
    session.commit()
    linked = session.scalars(select(Call.platform_call_id).where(Call.action_id == action_id))
    assert list(linked) == ["s-first"]


@pytest.mark.parametrize("named", ["3000000000", "2147483648", "99999999999999999999"])
def test_a_p_t_naming_an_id_past_the_id_column_is_an_unlinked_call(
    client: FlaskClient,
    session: Session,
    ifbyphone: HTTPServer,
    directory: dict[str, int],
    caplog: pytest.LogCaptureFixture,
    named: str,
) -> None:
    # Past INTEGER, the database would refuse the lookup: the turn must not ask it.
    reply = survo_post(client, "s-large", f"action|{named}||sig|x", account="1001", pin="2468")
    assert reply.findtext("parameters/user_parameters/message") == "Thank you, Ada Lovelace."
    session.commit()
    call = session.scalars(select(Call).where(Call.platform_call_id == "s-large")).one()
    assert (call.action_id, call.outcome) == (None, "verified")
    [attempt] = session.scalars(
        select(VerificationAttempt).where(VerificationAttempt.call_id == call.id)
    )
    assert (attempt.user_id, attempt.outcome) == (directory["1001"], "verified")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_the_verification_token_is_kept_nowhere_yet_links_the_call(
    client: FlaskClient,
    session: Session,
    ifbyphone: HTTPServer,
    directory: dict[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth, action_id, p_t = start_survo_verification(client, session, ifbyphone, "1001")
    token = dict(piece.split("|", 1) for piece in p_t.split("||"))["sig"]
    assert p_t == f"action|{action_id}||sig|{token}"  # sent to IfbyPhone as it is
    kept = f"action|{action_id}||sig|***"

    # A database fault mid-turn: the event is not stored, but logged.
    session.execute(text("ALTER TABLE verification_attempts RENAME TO attempts_away"))
    session.commit()
    try:
        survo_post(client, "s-fault", p_t, account="1001", pin="2468")
    finally:
        session.execute(text("ALTER TABLE attempts_away RENAME TO verification_attempts"))
        session.commit()
    [lost] = [r.getMessage() for r in caplog.records if "event not stored" in r.getMessage()]
    assert f'"p_t": "{kept}"' in lost

    reply = survo_post(client, "s-token", p_t, account="1001", pin="2468")
    assert reply.findtext("parameters/user_parameters/message") == "Thank you, Ada Lovelace."
    assert client.get(f"/api/v1/calls/{action_id}", headers=auth).get_json()["verification"] == (
        "verified"
    )
    session.commit()
    call = session.scalars(select(Call).where(Call.platform_call_id == "s-token")).one()
    assert call.action_id == action_id
    action = session.get(CallAction, action_id)
    assert action is not None and action.params_sent is not None
    assert action.params_sent["p_t"] == kept
    first = session.scalars(
        select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)
    ).first()
    assert first is not None and first.payload["p_t"] == kept
    stored = [
        *session.scalars(select(CallEvent.payload)),
        *session.scalars(select(CallEvent.reply)),
        *session.scalars(select(CallAction.params_sent)),
        *session.scalars(select(CallAction.provider_answer)),
        *session.scalars(select(CallAction.detail)),
    ]
    assert token not in str(stored)
    assert not [r for r in caplog.records if token in r.getMessage()]
