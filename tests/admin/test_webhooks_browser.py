"""The webhook admin pages in a real browser (headless Debian Chromium, Playwright):
an event the host application's receiver refused is listed as pending, and an
admin replays it from its page; the receiver, a real local HTTP server, gets the
same event again, signed, and takes it.

The app is served by a real WSGI server in a thread, over a migrated SQLite
database holding the demo directory (`live`, in tests/conftest.py); jobs run at
once (huey's immediate mode).
Skipped when /usr/bin/chromium is missing, unless GLUE_TEST_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
import requests
from flask import Flask
from playwright.sync_api import Browser, expect
from pytest_httpserver import HTTPServer

from tests.helpers.browser import sign_in
from tests.helpers.webhooks import Receiver, set_webhook

LONDON = phonenumbers.format_number(
    phonenumbers.example_number_for_type("GB", phonenumbers.PhoneNumberType.FIXED_LINE),
    phonenumbers.PhoneNumberFormat.E164,
)


@pytest.fixture
def live_config() -> dict[str, Any]:
    return {"WEBHOOK_ALLOW_HTTP": True}  # the receiver is a local plain-HTTP server


@pytest.fixture
def crm(live: tuple[str, Flask], httpserver: HTTPServer) -> tuple[str, Receiver]:
    """The API token crm, whose webhook is a receiver on the local server: the
    token and the receiver."""
    runner = live[1].test_cli_runner()
    created = runner.invoke(args=["api-tokens", "create", "crm"])
    assert created.exit_code == 0, created.output
    receiver = Receiver(httpserver).listen()
    receiver.secret = set_webhook(runner, "crm", receiver.url)
    return created.output.strip(), receiver


def test_an_admin_replays_an_event_the_receiver_refused(
    browser: Browser, live: tuple[str, Flask], crm: tuple[str, Receiver]
) -> None:
    base, _app = live
    token, receiver = crm
    receiver.script = [500]
    # The host application asks for a call the destination policy refuses: one
    # event, `call.refused`, which its receiver answers with a 500.
    answer = requests.post(
        f"{base}/api/v1/calls",
        json={"user": "1001", "target": {"kind": "number", "value": LONDON}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 422, answer.text
    [first] = receiver.deliveries
    event_id = first.event["id"]

    page = browser.new_page(viewport={"width": 1100, "height": 800})
    sign_in(page, base, "/admin/")
    page.get_by_role("navigation", name="Admin pages").get_by_role("link", name="Webhooks").click()

    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    page.get_by_label("State").select_option("pending")
    page.get_by_role("button", name="Show").click()
    row = page.locator("#webhook-events tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("call.refused")
    expect(row).to_contain_text("crm")
    expect(row).to_contain_text("pending")
    row.get_by_role("link", name=event_id).click()

    expect(page.get_by_role("heading", name=f"Webhook event {event_id}")).to_be_visible()
    attempts = page.locator("#webhook-attempts tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("receiver says 500")

    page.get_by_role("button", name=f"Replay {event_id}").click()
    expect(page.get_by_role("status")).to_have_text(f"Replay of {event_id} queued.")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(1)).to_contain_text("200")
    expect(attempts.nth(1)).to_contain_text("yes")
    expect(page.locator("dd.state")).to_have_text("delivered")

    second = receiver.deliveries[1]
    assert second.event["id"] == event_id and second.body == first.body
    assert second.valid and second.valid_by_own_check
    assert receiver.types() == ["call.refused"]
