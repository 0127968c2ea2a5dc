"""Fixtures of the click-to-call tests: a fake DIDforSale and a directory."""

from __future__ import annotations

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer
from sqlalchemy.orm import Session

from app.auth.passwords import hash_password
from tests.helpers.directory import add_group, add_user
from tests.helpers.web_client import API_KEY, ENDPOINT, PASSWORDS


@pytest.fixture
def provider(httpserver: HTTPServer, app: Flask) -> HTTPServer:
    """A real local HTTP server standing in for DIDforSale's CallTermination endpoint."""
    httpserver.expect_request(ENDPOINT, method="POST").respond_with_json(
        {"status": "success", "callSid": "CA-web-1"}
    )
    app.config.update(
        CALL_PROVIDER="didforsale",
        DIDFORSALE_API_URL=httpserver.url_for(ENDPOINT),
        DIDFORSALE_API_KEY=API_KEY,
        ORIGINATOR_NAME="Front desk",
        ORIGINATOR_NUMBER="+13125550199",
        PUBLIC_URL="https://glue.example.com",
    )
    return httpserver


@pytest.fixture
def directory(session: Session) -> dict[str, int]:
    """Ada and Grace (phones, passwords), Linus (password, no phone), Patrick (no
    password), a disabled user, and the group Night shift."""
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    grace = add_user(session, "1002", "Grace Hopper", "1357", "+13125550102")
    add_user(session, "1003", "Patrick O'Brien & Sons <x>", "8642", "+13125550103")
    disabled = add_user(session, "1004", "Disabled Demo", "9999", active=False)
    linus = add_user(session, "1005", "Linus Nophone", "3579")
    for user in (ada, grace, linus):
        user.password_hash = hash_password(PASSWORDS[user.account_number])
    disabled.password_hash = hash_password("disabled-1")
    night = add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada, grace))
    session.commit()
    return {"1001": ada.id, "1002": grace.id, "1005": linus.id, "500": night.id}
