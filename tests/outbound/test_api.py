"""The JSON API for host applications (token auth, JSON errors)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import tokens
from app.models import ApiToken, CallAction, PhoneNumber
from tests.helpers.directory import add_group, add_user


def token(session: Session, name: str = "crm") -> str:
    value = tokens.create(session, name)
    session.commit()
    return value


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_requests_without_a_valid_token_get_401_json(client: FlaskClient, session: Session) -> None:
    for headers in ({}, auth("glue_nope"), {"Authorization": "Basic x"}):
        response = client.post("/api/v1/calls", json={}, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"] == "unauthorized"
    assert session.scalars(select(CallAction)).all() == []


def test_a_revoked_token_is_refused(client: FlaskClient, session: Session) -> None:
    value = token(session)
    tokens.revoke(session, "crm")
    session.commit()
    assert client.get("/api/v1/calls/1", headers=auth(value)).status_code == 401


def test_only_the_tokens_digest_is_stored(session: Session) -> None:
    value = token(session)
    row = session.scalars(select(ApiToken)).one()
    assert value not in row.token_hash and len(row.token_hash) == 64


def test_a_user_without_a_phone_gets_needs_phone_then_can_add_one(
    client: FlaskClient, session: Session
) -> None:
    value = token(session)
    add_user(session, "1005", "Linus", "3579")
    add_group(session, "500", "Night shift", None, "+13125550500")
    body = {"user": "1005", "target": {"kind": "group", "value": "500"}}
    refused = client.post("/api/v1/calls", json=body, headers=auth(value))
    assert refused.status_code == 409 and refused.get_json()["error"] == "needs_phone"

    bad = client.put("/api/v1/users/1005/phone", json={"number": "12"}, headers=auth(value))
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_number"
    stored = client.put(
        "/api/v1/users/1005/phone", json={"number": "(312) 555-0177"}, headers=auth(value)
    )
    assert stored.get_json() == {"user": "1005", "phone": "+13125550177"}
    session.commit()
    phones = session.scalars(select(PhoneNumber.e164).order_by(PhoneNumber.id)).all()
    assert phones == ["+13125550500", "+13125550177"]


def test_errors_are_json_with_a_reason(client: FlaskClient, session: Session) -> None:
    value = token(session)
    add_user(session, "1001", "Ada", "2468", "+13125550101")
    cases = [
        ({"user": "9999", "target": {"kind": "originator"}}, 404, "unknown_user"),
        ({"user": "1001", "target": "group"}, 400, "invalid_target"),
        ({"user": "1001", "target": {"kind": "planet"}}, 400, "invalid_target"),
        ({"user": "1001", "target": {"kind": "number", "value": "12"}}, 400, "invalid_target"),
    ]
    for body, status, error in cases:
        response = client.post("/api/v1/calls", json=body, headers=auth(value))
        assert (response.status_code, response.get_json()["error"]) == (status, error), body
    not_json = client.post("/api/v1/calls", data="x", headers=auth(value))
    assert not_json.status_code == 400 and not_json.get_json()["error"] == "invalid_json"
    missing = client.get("/api/v1/calls/12345", headers=auth(value))
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    assert client.patch("/api/v1/calls/1", headers=auth(value)).get_json()["error"] == (
        "method_not_allowed"
    )


def test_api_tokens_cli(app: Flask, session: Session) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(args=["api-tokens", "create", "crm"])
    assert created.exit_code == 0 and created.output.startswith("glue_")
    assert runner.invoke(args=["api-tokens", "create", "crm"]).exit_code == 1
    listed = runner.invoke(args=["api-tokens", "list"])
    assert "crm\tactive\tlast used never" in listed.output
    assert created.output.strip() not in listed.output
    assert runner.invoke(args=["api-tokens", "revoke", "crm"]).exit_code == 0
    assert "revoked" in runner.invoke(args=["api-tokens", "list"]).output


def test_a_token_reads_only_the_calls_it_started(
    client: FlaskClient, session: Session, provider: object
) -> None:
    first, second = token(session, "crm"), token(session, "erp")
    add_user(session, "1001", "Ada", "2468", "+13125550101")
    add_group(session, "500", "Night shift", None, "+13125550500")
    body = {"user": "1001", "target": {"kind": "group", "value": "500"}}
    started = client.post("/api/v1/calls", json=body, headers=auth(first))
    assert started.status_code == 202
    call = started.get_json()["id"]
    assert client.get(f"/api/v1/calls/{call}", headers=auth(first)).status_code == 200
    other = client.get(f"/api/v1/calls/{call}", headers=auth(second))
    assert (other.status_code, other.get_json()["error"]) == (404, "not_found")


def test_setting_a_phone_replaces_the_one_rung_first(client: FlaskClient, session: Session) -> None:
    value = token(session)
    add_user(session, "1001", "Ada", "2468", "+13125550101")
    changed = client.put(
        "/api/v1/users/1001/phone", json={"number": "3125550177"}, headers=auth(value)
    )
    assert changed.get_json() == {"user": "1001", "phone": "+13125550177"}
    session.commit()
    assert session.scalars(select(PhoneNumber.e164)).all() == ["+13125550177"]
