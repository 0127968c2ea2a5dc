"""Retries that place nothing twice (SQLite and PostgreSQL), against a real local
HTTP server playing DIDforSale: the API's `Idempotency-Key`, and the one-time
nonces of the web page's call forms."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import lxml.html
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.auth import tokens
from app.models import CallAction, FormNonce, IdempotencyKey, OneTimeCode, utcnow
from tests.helpers.web_client import call_form, confirm_form, form_fields, sign_in

CALL = {"user": "1001", "target": {"kind": "group", "value": "500"}}


def bearer(session: Session, name: str = "crm") -> dict[str, str]:
    value = tokens.create(session, name)
    session.commit()
    return {"Authorization": f"Bearer {value}"}


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def actions(session: Session) -> int:
    session.commit()  # see what requests wrote since
    return session.scalar(select(func.count()).select_from(CallAction)) or 0


def placed(provider: HTTPServer) -> int:
    """Calls the provider was asked to place."""
    return len(provider.log)


def flashes(response: TestResponse) -> list[str]:
    page = lxml.html.fromstring(response.get_data(as_text=True))
    return [" ".join(p.text_content().split()) for p in page.xpath("//p[contains(@class,'flash')]")]


# --- the API -------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_first_answer_and_places_nothing(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    auth = keyed(bearer(session), "order-7-call")
    first = client.post("/api/v1/calls", json=CALL, headers=auth)
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    # The same body, its keys in another order and spaced otherwise.
    same = '{ "target": {"value": "500", "kind": "group"},  "user": "1001" }'
    again = client.post("/api/v1/calls", data=same, content_type="application/json", headers=auth)
    assert again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (actions(session), placed(provider)) == (1, 1)
    row = session.scalars(select(IdempotencyKey)).one()
    assert (row.key, row.response_status) == ("order-7-call", 202)
    assert row.response_body["id"] == first.get_json()["id"]


def test_the_same_key_with_another_body_is_a_422(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    auth = keyed(bearer(session), "k-1")
    assert client.post("/api/v1/calls", json=CALL, headers=auth).status_code == 202
    other = {"user": "1001", "target": {"kind": "user", "value": "1002"}}
    refused = client.post("/api/v1/calls", json=other, headers=auth)
    assert refused.status_code == 422
    assert refused.get_json()["error"] == "idempotency_key_reused"
    # ... and on another endpoint.
    elsewhere = client.post(
        "/api/v1/users/1001/verifications", json={"method": "code"}, headers=auth
    )
    assert (elsewhere.status_code, elsewhere.get_json()["error"]) == (422, "idempotency_key_reused")
    assert (actions(session), placed(provider)) == (1, 1)


def test_keys_are_per_token_and_a_new_key_places_a_new_call(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    crm, erp = bearer(session, "crm"), bearer(session, "erp")
    ids = {
        client.post("/api/v1/calls", json=CALL, headers=keyed(headers, key)).get_json()["id"]
        for headers, key in [(crm, "a"), (erp, "a"), (crm, "b"), (crm, "a")]
    }
    assert len(ids) == 3 and (actions(session), placed(provider)) == (3, 3)


def test_a_key_past_24_hours_is_forgotten_and_purged(
    app: Flask,
    client: FlaskClient,
    session: Session,
    provider: HTTPServer,
    directory: dict[str, int],
) -> None:
    auth = keyed(bearer(session), "late")
    first = client.post("/api/v1/calls", json=CALL, headers=auth).get_json()["id"]
    session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    session.commit()
    second = client.post("/api/v1/calls", json=CALL, headers=auth).get_json()["id"]
    assert second != first and (actions(session), placed(provider)) == (2, 2)
    assert session.scalars(select(IdempotencyKey.created_at)).one() > utcnow() - timedelta(hours=1)
    session.commit()

    # `flask retention purge` deletes what is past 24 hours, and only that.
    client.post("/api/v1/calls", json=CALL, headers=keyed(auth, "another"))
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.key == "late")
        .values(created_at=utcnow() - timedelta(hours=25))
    )
    session.commit()
    purged = app.test_cli_runner().invoke(args=["retention", "purge"])
    assert "past 24 hours, deleted: 1 idempotency keys, 0 call-form nonces" in purged.output
    assert session.scalars(select(IdempotencyKey.key)).all() == ["another"]


def test_a_bad_key_is_a_400_and_places_nothing(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    auth = bearer(session)
    for key in ["", "with space", "x" * 256, "é"]:
        response = client.post("/api/v1/calls", json=CALL, headers=keyed(auth, key))
        assert response.status_code == 400, key
        assert response.get_json()["error"] == "invalid_idempotency_key"
    assert (actions(session), placed(provider)) == (0, 0)


def test_an_error_answer_is_replayed_too(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    auth = keyed(bearer(session), "linus")
    body = {"user": "1005", "target": {"kind": "originator"}}  # Linus has no phone
    first = client.post("/api/v1/calls", json=body, headers=auth)
    assert first.status_code == 409
    client.put("/api/v1/users/1005/phone", json={"number": "3125550177"}, headers=auth)
    again = client.post("/api/v1/calls", json=body, headers=auth)
    assert (again.status_code, again.get_json()) == (409, first.get_json())
    assert (actions(session), placed(provider)) == (0, 0)


def test_concurrent_retries_place_one_call(
    app: Flask, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    """Retries sent at the same moment, each on its own connection: one claims
    the key and places the call; the others get its answer or are told to wait."""
    auth = keyed(bearer(session), "burst")
    start = threading.Barrier(6)
    answers: list[tuple[int, Any]] = []

    def retry() -> None:
        client = app.test_client()
        start.wait()
        response = client.post("/api/v1/calls", json=CALL, headers=auth)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 6
    assert (actions(session), placed(provider)) == (1, 1)
    call_id = session.scalars(select(CallAction.id)).one()
    for status, body in answers:
        assert status in (202, 409), body
        if status == 202:
            assert body["id"] == call_id
        else:
            assert body["error"] == "idempotency_key_in_progress"
    assert any(status == 202 for status, _ in answers)


def sent_url(provider: HTTPServer, n: int = -1) -> str:
    request = provider.log[n][0]
    return parse_qs(request.get_data(as_text=True))["url"][0]


def test_verification_requests_take_a_key(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    auth = bearer(session)
    url = "/api/v1/users/1001/verifications"
    first = client.post(url, json={"method": "code"}, headers=keyed(auth, "v1"))
    again = client.post(url, json={"method": "code"}, headers=keyed(auth, "v1"))
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert (actions(session), placed(provider)) == (1, 1)
    assert session.scalar(select(func.count()).select_from(OneTimeCode)) == 1

    # The code the user heard, typed back: a retried check gets "confirmed"
    # again, where a second check of a used code is otherwise refused.
    document = etree.fromstring(client.post(urlsplit(sent_url(provider)).path).data)
    code = "".join(ch for ch in document.findtext("Say") or "" if ch.isdigit())
    check = f"{url}/{first.get_json()['id']}"
    for _ in range(2):
        checked = client.post(check, json={"code": code}, headers=keyed(auth, "c1"))
        assert (checked.status_code, checked.get_json()) == (200, {"outcome": "confirmed"})
    unkeyed = client.post(check, json={"code": code}, headers=auth)
    assert (unkeyed.status_code, unkeyed.get_json()["error"]) == (410, "used")


# --- the web page --------------------------------------------------------------


def test_a_resubmitted_call_form_shows_the_first_call(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    form = call_form(client, "group", "500")
    first = client.post("/call", data=form)
    again = client.post("/call", data=form)  # a double click, a reload, the Back button
    assert first.status_code == again.status_code == 302
    assert again.location == first.location and urlsplit(first.location).path.startswith("/calls/")
    assert (actions(session), placed(provider)) == (1, 1)
    assert (
        session.scalars(select(FormNonce.action_id)).one()
        == session.scalars(select(CallAction.id)).one()
    )


def test_each_button_of_a_page_places_its_own_call(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    home = client.get("/")
    group = form_fields(home, "/call", kind="group", value="500")
    grace = form_fields(home, "/call", kind="user", value="1002")
    assert group["nonce"] != grace["nonce"]
    assert client.post("/call", data=group).location != client.post("/call", data=grace).location
    assert (actions(session), placed(provider)) == (2, 2)


def test_a_call_form_without_its_nonce_places_nothing(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    form = call_form(client, "group", "500")
    for nonce in ["", "forged", form["nonce"] + "x"]:
        refused = client.post("/call", data={**form, "nonce": nonce})
        assert refused.location == "/"
        assert flashes(client.get("/")) == ["This page has expired. Press the button again."]
    # Someone else's nonce is not yours.
    client.post("/logout", data={"csrf_token": form["csrf_token"]})
    sign_in(client, "1002")
    theirs = call_form(client, "user", "1001")
    refused = client.post("/call", data={**theirs, "nonce": form["nonce"]})
    assert refused.location == "/"
    assert (actions(session), placed(provider)) == (0, 0)


def test_concurrent_submits_of_one_form_place_one_call(
    app: Flask, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    client = app.test_client()
    sign_in(client, "1001")
    form = call_form(client, "group", "500")
    cookie = client.get_cookie("session")
    assert cookie is not None
    start = threading.Barrier(4)
    locations: list[str] = []

    def submit() -> None:
        browser = app.test_client()
        browser.set_cookie("session", cookie.value)
        start.wait()
        locations.append(browser.post("/call", data=form).location)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert (actions(session), placed(provider)) == (1, 1)
    call_id = session.scalars(select(CallAction.id)).one()
    assert len(locations) == 4
    assert set(locations) <= {f"/calls/{call_id}", "/"}
    assert f"/calls/{call_id}" in locations


def test_a_resubmitted_confirm_form_shows_the_first_code(
    client: FlaskClient, session: Session, provider: HTTPServer, directory: dict[str, int]
) -> None:
    sign_in(client, "1001")
    form = confirm_form(client)
    first = client.post("/phone/confirm", data=form)
    again = client.post("/phone/confirm", data=form)
    assert "/phone/confirm/" in first.location and again.location == first.location
    assert (actions(session), placed(provider)) == (1, 1)
    assert session.scalar(select(func.count()).select_from(OneTimeCode)) == 1


def test_call_forms_are_sent_once_by_the_page_script(
    client: FlaskClient, directory: dict[str, int]
) -> None:
    """Each form that places a call is marked for the page's script, which
    disables its button as it is sent."""
    sign_in(client, "1001")
    page = lxml.html.fromstring(client.get("/").get_data(as_text=True))
    forms = page.xpath("//form[@action='/call' or @action='/phone/confirm']")
    assert forms and all(form.get("data-once") is not None for form in forms)
    script = " ".join(page.xpath("//script/text()"))
    assert "data-once" in script and "disabled = true" in script
