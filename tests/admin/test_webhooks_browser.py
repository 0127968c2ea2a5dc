"""The webhook admin pages in a real browser (headless Debian Chromium, Playwright):
an event the host application's receiver refused is listed as pending, and an
admin replays it from its page; the receiver, a real local HTTP server, gets the
same event again, signed, and takes it.

The app is served by a real WSGI server in a thread, over a migrated SQLite
database holding the demo directory; jobs run at once (huey's immediate mode).
Skipped when /usr/bin/chromium is missing, unless GLUE_TEST_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug.serving import make_server

from app import create_app
from tests.helpers.settings import CHROMIUM_ARGS, TEST_SECRETS
from tests.helpers.webhooks import Receiver, set_webhook

LONDON = phonenumbers.format_number(
    phonenumbers.example_number_for_type("GB", phonenumbers.PhoneNumberType.FIXED_LINE),
    phonenumbers.PhoneNumberFormat.E164,
)


@pytest.fixture
def live(
    sqlite_template: Path, tmp_path: Path, flows_dir: Path, httpserver: HTTPServer
) -> Iterator[tuple[str, str, Receiver]]:
    """The app on a real server (threaded), Ada an admin, and the API token crm
    whose webhook is a receiver on the local server: the base URL, the token and
    the receiver."""
    database = tmp_path / "glue.db"
    shutil.copy(sqlite_template, database)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{database}",
            "FLOWS_DIR": str(flows_dir),
            "WEBHOOK_ALLOW_HTTP": True,
            **TEST_SECRETS,
        },
        instance_path=str(tmp_path / "instance"),
    )
    runner = app.test_cli_runner()
    for args in (["demo", "load"], ["users", "make-admin", "1001"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    created = runner.invoke(args=["api-tokens", "create", "crm"])
    assert created.exit_code == 0, created.output
    receiver = Receiver(httpserver).listen()
    receiver.secret = set_webhook(runner, "crm", receiver.url)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", created.output.strip(), receiver
    finally:
        server.shutdown()
        thread.join(5)
        app.extensions["glue.engine"].dispose()


def test_an_admin_replays_an_event_the_receiver_refused(
    chromium_path: str, live: tuple[str, str, Receiver]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, token, receiver = live
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

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(f"{base}/admin/")
            page.get_by_label("Account number").fill("1001")
            page.get_by_label("Password").fill("ada-demo-1")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("navigation", name="Admin pages").get_by_role(
                "link", name="Webhooks"
            ).click()

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
        finally:
            browser.close()

    second = receiver.deliveries[1]
    assert second.event["id"] == event_id and second.body == first.body
    assert second.valid and second.valid_by_own_check
    assert receiver.types() == ["call.refused"]
