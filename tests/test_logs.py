"""Logs: a request id on every line, and never a PIN."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.conftest import TEST_SECRETS
from tests.directory_helpers import add_user

KEY = TEST_SECRETS["IFBYPHONE_SECRET"]


def test_a_full_call_logs_request_ids_and_no_pin_or_secret(
    client: FlaskClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    add_user(session, "1001", "Ada", "24682468", "+13125550101")
    caplog.set_level(logging.DEBUG)
    posts = [
        {"session_id": "s1", "account": "1001", "pin": "13571357"},  # wrong
        {"session_id": "s1", "account": "1001", "pin": "1357x"},  # malformed
        {"account": "1001", "pin": "97531975"},  # no session id
        {"session_id": "s2", "account": "1001", "pin": "24682468"},  # right
    ]
    for fields in posts:
        response = client.post(f"/ifbyphone/verify_caller?key={KEY}", data=fields)
        assert response.headers["X-Request-ID"]
    client.post("/ifbyphone/nope?key=" + KEY, data={"session_id": "s3", "pin": "86428642"})
    text = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert caplog.records, "the malformed requests must have been logged"
    for secret in ("13571357", "1357x", "97531975", "24682468", "86428642", KEY):
        assert secret not in text
    assert all(
        getattr(r, "request_id", "-") != "-"
        for r in caplog.records
        if r.name.startswith("app.hooks")
    )


def test_a_safe_incoming_request_id_is_kept_and_a_hostile_one_replaced(
    client: FlaskClient,
) -> None:
    kept = client.get("/ifbyphone/verify_caller", headers={"X-Request-ID": "lb-1234.abc"})
    assert kept.headers["X-Request-ID"] == "lb-1234.abc"
    hostile = client.get("/ifbyphone/verify_caller", headers={"X-Request-ID": "x y <script>"})
    assert hostile.headers["X-Request-ID"] != "x y <script>"
    assert len(hostile.headers["X-Request-ID"]) == 32
