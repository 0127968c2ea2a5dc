"""The sandbox provider `make run` uses when no provider is chosen: a fresh app
(demo directory, nothing else configured) serving over real HTTP, a first Call
from the web page that the sandbox plays through Glue's own status callback to
the end, and the page saying "sandbox"."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from lxml import html

from app.config import DEFAULTS
from app.db import get_session
from app.models import CallAction, User
from app.outbound import jobs, service
from app.outbound.destinations import DestinationPolicy
from app.outbound.providers import make_provider
from app.outbound.providers.sandbox import Sandbox
from tests.helpers.live_server import serve
from tests.helpers.web_client import PASSWORDS

# The shipped destination policy: the tests' numbers are all callable.
SHIPPED = DestinationPolicy.from_config(DEFAULTS)


@pytest.fixture
def glue(sqlite_template: Path, tmp_path: Path, flows_dir: Path) -> Iterator[tuple[Flask, str]]:
    # What `make run` sets when no provider is chosen; nothing else.
    sandbox = {"CALL_PROVIDER": "sandbox", "VERIFY_PROVIDER": "sandbox"}
    with serve(sqlite_template, tmp_path, flows_dir, **sandbox, SANDBOX_ANSWER_SECONDS=0.2) as (
        base,
        app,
    ):
        app.config["PUBLIC_URL"] = base
        yield app, base


def csrf(page: requests.Response) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def test_a_first_call_on_a_fresh_app_goes_through_the_sandbox(glue: tuple[Flask, str]) -> None:
    app, base = glue
    browser = requests.Session()
    login = browser.get(f"{base}/login", timeout=5)
    browser.post(
        f"{base}/login",
        data={"account": "1001", "password": PASSWORDS["1001"], "csrf_token": csrf(login)},
        timeout=5,
    )
    dashboard = browser.get(f"{base}/", timeout=5)
    [note] = html.fromstring(dashboard.text).xpath("//p[contains(@class, 'sandbox')]")
    assert "Sandbox" in note.text_content() and "no phone rings" in note.text_content()

    # The Call button's form as the page has it: its CSRF token and one-time nonce.
    [form] = html.fromstring(dashboard.text).xpath(
        "//form[@action='/call'][.//input[@name='kind'][@value='group']]"
        "[.//input[@name='value'][@value='500']]"
    )
    fields = {i.get("name"): i.get("value") or "" for i in form.xpath(".//input[@name]")}
    placed = browser.post(f"{base}/call", data=fields, timeout=10)
    assert re.search(r"/calls/\d+$", placed.url), placed.url
    assert "Sandbox" in html.fromstring(placed.text).text_content()
    action_id = int(placed.url.rsplit("/", 1)[1])

    deadline = time.monotonic() + 20
    view: dict[str, object] = {}
    while time.monotonic() < deadline:
        view = browser.get(f"{base}/calls/{action_id}.json", timeout=5).json()
        if view["status"] == "completed":
            break
        time.sleep(0.1)
    assert view["status"] == "completed", view
    with app.app_context():
        action = get_session().get(CallAction, action_id)
        assert action is not None
        assert action.provider == "sandbox"
        assert action.attempts == 1
        assert action.provider_call_ids[0].startswith("SANDBOX")
        assert action.params_sent["to"] == "13125550101"  # Ada's phone rang first
        assert action.params_sent["url"] == "***"  # the dial document's token
        reports = [event.outcome for call in action.calls for event in call.events]
        assert reports == ["initiated", "ringing", "answered", "completed"]


def test_the_sandbox_phone_is_connected_to_the_person_called(glue: tuple[Flask, str]) -> None:
    """On answer the sandbox fetches Glue's dial document, as Twilio would."""
    app, _ = glue
    said: list[str] = []
    with app.app_context():
        session = get_session()
        ada = session.query(User).filter_by(account_number="1001").one()
        target = service.resolve_target(session, "user", "1002", originator="", region="US")
        action = service.record_call(session, ada, target, "sandbox", via="api", policy=SHIPPED)
        session.commit()
        provider = make_provider("sandbox", app.config)
        assert isinstance(provider, Sandbox)
        provider.say = said.append
        result = provider.place_call(jobs.call_request(session, action, app.config))
        session.rollback()
    assert result.outcome == "accepted"
    deadline = time.monotonic() + 10
    while not any("completed" in line for line in said) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"the phone is connected to {target.number}" in said
