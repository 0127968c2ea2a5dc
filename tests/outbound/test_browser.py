"""The click-to-call page in a real browser (headless Debian Chromium, Playwright).

The app is served by a real WSGI server in a thread, over a migrated SQLite
database holding the demo directory (`live`, in tests/conftest.py); a local HTTP
server plays DIDforSale, and the test posts DIDforSale's status callbacks the
way the platform would.

Skipped when /usr/bin/chromium is missing, unless GLUE_TEST_REQUIRE_BROWSER=1.
With GLUE_UPDATE_SCREENSHOTS=1 it also rewrites docs/images/dashboard.png and
docs/images/call-status.png.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from playwright.sync_api import Browser, Route, expect
from pytest_httpserver import HTTPServer

from tests.helpers.browser import screenshot_path
from tests.helpers.settings import TEST_SECRETS

ENDPOINT = "/didforsaleapi/index.php/api/V2/CallTermination/"


@pytest.fixture
def live_config(httpserver: HTTPServer) -> dict[str, Any]:
    """Calls placed through DIDforSale, played by the local HTTP server."""
    return {
        "CALL_PROVIDER": "didforsale",
        "DIDFORSALE_API_URL": httpserver.url_for(ENDPOINT),
        "DIDFORSALE_API_KEY": "didforsale-test-key",
        "ORIGINATOR_NAME": "Front desk",
        "ORIGINATOR_NUMBER": "+13125550199",
    }


@pytest.fixture
def live(live: tuple[str, Flask]) -> tuple[str, Flask]:
    """The live app, its own address the status callback URL sent to the provider."""
    base, app = live
    app.config["PUBLIC_URL"] = base
    return live


def post_status(base: str, action: int, status: str) -> None:
    """A DIDforSale status callback for the caller's leg, as the platform posts it."""
    response = requests.post(
        f"{base}/didml/status",
        params={"action": str(action), "key": TEST_SECRETS["DIDML_SECRET"]},
        data={
            "callSid": "CA-browser-1",
            "CallStatus": status,
            "ParentCallSid": "",
            "Direction": "Outbound",
            "CallbackSource": "call-progress-event",
        },
        timeout=10,
    )
    assert response.status_code == 204, response.text


def test_a_user_without_a_phone_calls_a_group_and_watches_it_connect(
    browser: Browser, live: tuple[str, Flask], httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request(ENDPOINT, method="POST").respond_with_json(
        {"status": "success", "callSid": "CA-browser-1"}
    )
    base, _ = live
    page = browser.new_page(viewport={"width": 1000, "height": 800})

    # Sign in as Linus, who has no phone on file.
    page.goto(f"{base}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Account number").fill("1005")
    page.get_by_label("Password").fill("linus-demo-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Who do you want to call?")).to_be_visible()
    expect(page.locator("#my-phone")).to_contain_text("No phone on file")

    # Call the group: first asked for a number.
    page.get_by_role("button", name="Call Night shift").click()
    expect(page.get_by_role("heading", name="Your phone number")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Night shift")
    phone = page.get_by_label("Your phone number")
    phone.fill("12345")
    page.get_by_role("button", name="Save and call").click()
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#phone-error")).to_contain_text(re.compile("invalid phone number", re.I))
    assert not httpserver.log
    phone.fill("(312) 555-0177")
    page.get_by_role("button", name="Save and call").click()

    # The status page: placed through the fake DIDforSale.
    expect(page.get_by_role("heading", name="Calling Night shift")).to_be_visible()
    match = re.search(r"/calls/([0-9]+)$", page.url)
    assert match, page.url
    action = int(match.group(1))
    status = page.locator("#call-status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text("Calling you…")
    assert len(httpserver.log) == 1
    sent = httpserver.log[0][0].form
    assert sent["to"].endswith("3125550177") and sent["from"].endswith("3125550500")

    # Status callbacks arrive; the page follows without being reloaded.
    page.evaluate("window.notReloaded = true")
    post_status(base, action, "ringing")
    expect(status).to_have_text("Ringing…")
    post_status(base, action, "answered")
    expect(status).to_have_text("Connected")
    expect(page.locator("#call-statuses li")).to_have_count(2)
    expect(page.locator("#call-statuses")).to_contain_text("Ringing")
    expect(page.locator("#call-statuses")).to_contain_text("Answered")
    expect(page.get_by_role("main")).not_to_contain_text("success")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=screenshot_path("call-status", tmp_path))

    # The history on the dashboard has the action and its status reports.
    page.get_by_role("link", name="Back to the directory").click()
    entry = page.locator(f"#call-{action}")
    expect(entry).to_contain_text("Night shift")
    expect(entry).to_contain_text("Connected")
    expect(entry.locator("ol.statuses li")).to_have_count(2)
    expect(page.locator("#my-phone")).to_contain_text("+13125550177")
    page.screenshot(path=screenshot_path("dashboard", tmp_path), full_page=True)

    # Readable on a phone: nothing wider than a small screen.
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_a_call_button_is_disabled_once_pressed(browser: Browser, live: tuple[str, Flask]) -> None:
    """The page's script sends a Call form once: a second press sends nothing
    (without the script, the server places one call per form anyway: see
    tests/outbound/test_idempotency.py)."""
    base, _ = live
    sent: list[str | None] = []

    def hold(route: Route) -> None:
        sent.append(route.request.post_data)
        route.fulfill(status=204)  # no content: the page stays as it is

    page = browser.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("Account number").fill("1001")
    page.get_by_label("Password").fill("ada-demo-1")
    page.get_by_role("button", name="Sign in").click()
    page.route(f"{base}/call", hold)
    button = page.get_by_role("button", name="Call Grace Hopper")
    button.click()
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("aria-busy", "true")
    button.click(force=True)
    button.press("Enter")
    page.get_by_role("button", name="Call Night shift").click()  # another form: sent
    page.wait_for_timeout(300)
    assert len(sent) == 2 and "kind=user&value=1002" in (sent[0] or "")
    assert "kind=group&value=500" in (sent[1] or "")
