"""Signing in and posting forms on the web page, as a browser does (for tests)."""

from __future__ import annotations

import re

import lxml.html
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


def form_fields(response: TestResponse, action: str, **match: str) -> dict[str, str]:
    """The hidden fields of the page's form posting to `action` (and holding
    `match`'s values): its CSRF token, and its one-time nonce if it places a call."""
    page = lxml.html.fromstring(response.get_data(as_text=True))
    for form in page.xpath("//form[@action=$action]", action=action):
        fields = {i.get("name"): i.get("value") or "" for i in form.xpath(".//input[@name]")}
        if all(fields.get(name) == value for name, value in match.items()):
            return fields
    raise AssertionError(f"no form to {action} with {match}")


def call_form(client: FlaskClient, kind: str, value: str) -> dict[str, str]:
    """The fields the dashboard's Call button for that target sends."""
    return form_fields(client.get("/"), "/call", kind=kind, value=value)


def confirm_form(client: FlaskClient) -> dict[str, str]:
    """The fields of the dashboard's "Confirm by a phone call" button."""
    return form_fields(client.get("/"), "/phone/confirm")
