"""The test phone and the call page's path in a real browser (headless Chromium,
Playwright), keyboard only, at desktop width and at 390 px: a demo user verified,
a wrong PIN, the path lit on the graph, nothing written; then a real call's path.

Takes the screenshots docs/flows.md shows: into docs/images/ with
GLUE_TEST_SCREENSHOTS=1, else into the test's temporary folder (a test run
leaves the checkout as it was).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Call, CallEvent, UnknownClaim, User, VerificationAttempt
from tests.helpers.settings import CHROMIUM_ARGS, TEST_SECRETS

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
# Records what the page asks the browser to read aloud (headless Chromium has no voice).
SPOKEN = """
window.__spoken = [];
if (window.speechSynthesis) {
  window.speechSynthesis.speak = (utterance) => window.__spoken.push(utterance.text);
}
"""


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Where the screenshots go."""
    return DOCS_IMAGES if os.environ.get("GLUE_TEST_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
def published(live: tuple[str, Flask], graphviz_dot: None) -> tuple[str, Flask]:
    """The live app with its flow files published (version 1)."""
    result = live[1].test_cli_runner().invoke(args=["forms", "publish"])
    assert result.exit_code == 0, result.output
    return live


def rows(app: Flask) -> dict[str, int]:
    with Session(app.extensions["glue.engine"]) as session:
        counts = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Call, CallEvent, VerificationAttempt, UnknownClaim)
        }
        ada = session.scalars(select(User).where(User.account_number == "1001")).one()
        counts["ada_failures"] = ada.failed_attempts + ada.owner_failed_attempts
    return counts


def sign_in(page: Any, base: str, path: str) -> None:
    page.goto(base + path)
    page.get_by_label("Account number").fill("1001")
    page.get_by_label("Password").fill("ada-demo-1")
    page.get_by_label("Password").press("Enter")


def lit_nodes(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all(
            "[data-trial-graph] g.node.lit > title, .graph-inline g.node.lit > title",
            "titles => titles.map(t => t.textContent)",
        )
    )


def test_the_test_phone_verifies_a_demo_user_keyboard_only(
    chromium_path: str, published: tuple[str, Flask], images: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, app = published
    before = rows(app)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(SPOKEN)
            sign_in(page, base, "/admin/flows/verify_caller")
            # From the flow page to the phone, by keyboard.
            link = page.get_by_role("link", name="Try it on the test phone")
            link.focus()
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="Try verify_caller")).to_be_visible()
            expect(page.get_by_role("heading", name="Test phone")).to_be_visible()

            page.get_by_label("Platform").select_option("twiml")
            page.get_by_label("Read aloud").focus()
            page.keyboard.press("Space")
            expect(page.get_by_label("Read aloud")).to_be_checked()
            page.get_by_role("button", name="Call").focus()
            page.keyboard.press("Enter")

            asking = page.locator("#phone-asking")
            expect(asking).to_contain_text("Asks account")
            keys = page.get_by_label("Keys")
            expect(keys).to_be_focused()
            page.keyboard.type("1001")
            page.keyboard.press("Enter")
            expect(asking).to_contain_text("Asks pin")
            page.keyboard.type("2468#")
            page.keyboard.press("Enter")

            transcript = page.locator("#phone-transcript")
            expect(transcript).to_contain_text("hears: Thank you, Ada Lovelace.")
            expect(transcript).to_contain_text("pressed: •••• (pin)")
            expect(transcript).to_contain_text("(transferred to +13125550101)")
            expect(asking).to_contain_text("The call has left the flow")
            assert "2468" not in transcript.inner_text()
            assert "A new call begins" not in transcript.inner_text()  # Call began it
            # The path, lit on the graph.
            assert lit_nodes(page) == [
                "start",
                "question 1",
                "question 2",
                "verify",
                "outcome verified",
                "verified step 1",
                "verified step 2",
            ]
            # Each reply's XML, in a <details> opened from the keyboard.
            summary = transcript.locator("summary").last
            summary.focus()
            page.keyboard.press("Enter")
            reply = transcript.locator("details").last.locator("pre")
            expect(reply).to_be_visible()
            expect(reply).to_contain_text("<Dial")
            expect(reply).to_contain_text("<Number>+13125550101</Number>")
            spoken = page.evaluate("window.__spoken")
            assert "Please enter your account number, then press pound." in spoken
            assert "Thank you, Ada Lovelace." in spoken
            page.screenshot(path=str(images / "test-phone.png"), full_page=True)

            # A wrong PIN: asked again, the retry lit.
            page.get_by_role("button", name="Call").focus()
            page.keyboard.press("Enter")
            expect(asking).to_contain_text("Asks account")
            page.keyboard.type("1001")
            page.keyboard.press("Enter")
            expect(asking).to_contain_text("Asks pin")
            page.keyboard.type("0000")
            page.keyboard.press("Enter")
            expect(transcript).to_contain_text("hears: That did not match. Please try again.")
            expect(asking).to_contain_text("Asks account")
            assert "outcome retry" in lit_nodes(page)
            assert "outcome verified" not in lit_nodes(page)
            # Silence, by keyboard: asked once more.
            page.get_by_role("button", name="Silence").focus()
            page.keyboard.press("Enter")
            expect(transcript).to_contain_text("pressed: (silence) (account)")
        finally:
            browser.close()
    assert rows(app) == before  # no call, event, attempt or failure recorded


def test_the_test_phone_at_390_px_with_the_keypad(
    chromium_path: str, published: tuple[str, Flask], images: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, app = published
    before = rows(app)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            sign_in(page, base, "/admin/flows/verify_caller/try?platform=ifbyphone")
            expect(page.get_by_label("Platform")).to_have_value("ifbyphone")
            # Nothing wider than the screen but the graph, which scrolls in its box.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            page.get_by_role("button", name="Call").click()
            asking = page.locator("#phone-asking")
            expect(asking).to_contain_text("Asks account")
            keypad = page.get_by_role("group", name="Keypad")
            for key in "1001#":
                keypad.get_by_role("button", name=key, exact=True).click()
            expect(asking).to_contain_text("Asks pin")
            for key in "2468#":
                keypad.get_by_role("button", name=key, exact=True).click()
            transcript = page.locator("#phone-transcript")
            # IfbyPhone: the message is read by the say SurVo, then the transfer.
            expect(transcript).to_contain_text("hears: Thank you, Ada Lovelace.")
            expect(transcript).to_contain_text("(transferred to +13125550101)")
            expect(transcript.locator("details")).to_have_count(2)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            for name in ("Send", "Silence", "Call"):
                box = page.get_by_role("button", name=name, exact=True).bounding_box()
                assert box is not None and box["height"] >= 44 and box["x"] + box["width"] <= 390
            page.screenshot(path=str(images / "test-phone-390.png"), full_page=True)
        finally:
            browser.close()
    assert rows(app) == before


def test_the_call_page_draws_a_real_calls_path(
    chromium_path: str, published: tuple[str, Flask], images: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _app = published
    # A real call on IfbyPhone: a wrong PIN, then the right one, each SurVo's
    # p_t posted back as IfbyPhone does.
    url = f"{base}/ifbyphone/verify_caller"
    key = {"key": TEST_SECRETS["IFBYPHONE_SECRET"]}
    call = {"session_id": "s-path-browser", "caller_id": "3125550199"}
    p_t = ""
    for fields in ({"account": "1001", "pin": "0000"}, {}, {"account": "1001", "pin": "2468"}, {}):
        response = requests.post(url, params=key, data={**call, "p_t": p_t, **fields}, timeout=10)
        assert response.status_code == 200, response.text
        p_t = etree.fromstring(response.content).findtext("parameters/p_t") or ""
    assert etree.fromstring(response.content).findtext("app") == "transfer"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            sign_in(page, base, "/admin/calls/1")
            expect(page.get_by_role("heading", name="Call 1")).to_be_visible()
            lit = lit_nodes(page)
            for node in ("verify", "outcome retry", "outcome verified", "verified step 2"):
                assert node in lit, lit
            replies = page.locator("details:has(pre.reply)")
            expect(replies).to_have_count(4)
            expect(replies.last.locator("pre")).to_be_visible()  # the last one open
            expect(replies.first.locator("pre")).to_be_hidden()
            replies.first.locator("summary").focus()
            page.keyboard.press("Enter")
            expect(replies.first.locator("pre")).to_contain_text("<app>survo</app>")
            page.get_by_role("heading", name="Path").scroll_into_view_if_needed()
            page.screenshot(path=str(images / "call-path.png"), full_page=True)

            page.set_viewport_size({"width": 390, "height": 844})
            wide = page.evaluate(
                "Array.from(document.querySelectorAll('body *')).filter(e => "
                "e.getBoundingClientRect().right > 391).map(e => e.tagName + '.' + e.className"
                " + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 12)"
            )
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
        finally:
            browser.close()


def test_in_an_editor_the_phone_runs_the_draft_and_lights_the_editors_graph(
    chromium_path: str, published: tuple[str, Flask], flows_dir: Path
) -> None:
    """The contract with the editor page: window.glueStudio.getText() gives the
    draft, highlight(nodes) gets the path."""
    from playwright.sync_api import expect, sync_playwright

    base, app = published
    before = rows(app)
    source = (flows_dir / "verify_caller.yaml").read_text(encoding="utf-8")
    draft = source.replace('"Thank you, {name}."', '"Draft says hello, {name}."')
    studio = (
        "window.__highlighted = [];"
        f"window.glueStudio = {{getText: () => {json.dumps(draft)},"
        " highlight: (nodes) => { window.__highlighted = nodes; }};"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(studio)
            sign_in(page, base, "/admin/flows/verify_caller/try?platform=didml")
            expect(page.get_by_label("Runs")).to_have_value("draft")
            page.get_by_role("button", name="Call").press("Enter")
            expect(page.locator("#phone-asking")).to_contain_text("Asks account")
            page.keyboard.type("1001")
            page.keyboard.press("Enter")
            expect(page.locator("#phone-asking")).to_contain_text("Asks pin")
            page.keyboard.type("2468")
            page.keyboard.press("Enter")
            transcript = page.locator("#phone-transcript")
            expect(transcript).to_contain_text("hears: Draft says hello, Ada Lovelace.")
            highlighted = page.evaluate("window.__highlighted")
            assert highlighted[0] == "start" and highlighted[-1] == "verified step 2"
        finally:
            browser.close()
    assert rows(app) == before
