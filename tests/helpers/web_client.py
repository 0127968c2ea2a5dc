"""Signing in and posting forms on the web page, as a browser does (for tests)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

PASSWORDS = {"1001": "ada-demo-1", "1002": "grace-demo-1", "1005": "linus-demo-1"}
API_KEY = "didforsale-test-key"
ENDPOINT = "/didforsaleapi/index.php/api/V2/CallTermination/"
SAME_ANSWER = "That account number and password do not match."


def token(response: TestResponse) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: FlaskClient, account: str, password: str | None = None) -> TestResponse:
    form = client.get("/login")
    data = {"account": account, "password": password or PASSWORDS[account]}
    return client.post("/login", data={**data, "csrf_token": token(form)})


def dashboard_token(client: FlaskClient) -> str:
    return token(client.get("/"))
