"""The test phone and the call page's path in a real browser (headless Chromium,
Playwright), keyboard only, at desktop width and at 390 px: a demo user verified,
a wrong PIN, the path lit on the graph, nothing written; the phone beside the
flow editor running the text being edited; then a real call's path.

With GLUE_UPDATE_SCREENSHOTS=1 it also rewrites the screenshots docs/flows.md
shows (docs/images/test-phone*.png, studio-test-phone*.png, call-path.png).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from flask import Flask
from lxml import etree
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Call, CallEvent, FlowVersion, UnknownClaim, User, VerificationAttempt
from tests.helpers.browser import DESKTOP, PHONE, screenshot_path, sign_in
from tests.helpers.flows import VERIFIED_PATH
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.studio import editor_ready, retype_quoted

# Records what the page asks the browser to read aloud (headless Chromium has no voice).
SPOKEN = """
window.__spoken = [];
if (window.speechSynthesis) {
  window.speechSynthesis.speak = (utterance) => window.__spoken.push(utterance.text);
}
"""


@pytest.fixture
def live(live: tuple[str, Flask], graphviz_dot: None) -> tuple[str, Flask]:
    """The live app (its flow files published as version 1), with Graphviz to draw."""
    return live


def rows(app: Flask) -> dict[str, int]:
    with Session(app.extensions["glue.engine"]) as session:
        counts = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Call, CallEvent, VerificationAttempt, UnknownClaim, FlowVersion)
        }
        ada = session.scalars(select(User).where(User.account_number == "1001")).one()
        counts["ada_failures"] = ada.failed_attempts + ada.owner_failed_attempts
    return counts


def lit_nodes(page: Page) -> list[str]:
    return list(
        page.eval_on_selector_all(
            "[data-trial-graph] g.node.lit > title, .graph-inline g.node.lit > title",
            "titles => titles.map(t => t.textContent)",
        )
    )


def test_the_test_phone_verifies_a_demo_user_keyboard_only(
    browser: Browser, live: tuple[str, Flask], tmp_path: Path
) -> None:
    base, app = live
    before = rows(app)
    page = browser.new_page(viewport=DESKTOP)
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
    assert lit_nodes(page) == list(VERIFIED_PATH)
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
    page.screenshot(path=screenshot_path("test-phone", tmp_path), full_page=True)

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
    assert rows(app) == before  # no call, event, attempt or failure recorded


def test_the_test_phone_at_390_px_with_the_keypad(
    browser: Browser, live: tuple[str, Flask], tmp_path: Path
) -> None:
    base, app = live
    before = rows(app)
    page = browser.new_page(viewport=PHONE)
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
    page.screenshot(path=screenshot_path("test-phone-390", tmp_path), full_page=True)
    assert rows(app) == before


def test_beside_the_editor_the_phone_runs_the_edited_text_unpublished(
    browser: Browser, live: tuple[str, Flask], tmp_path: Path
) -> None:
    """The admin changes the verified message in the editor and, without
    publishing, calls the text she sees: she hears it, the editor's own graph
    lights the path, and nothing is written."""
    base, app = live
    before = rows(app)
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, base, "/admin/flows/verify_caller/edit")
    editor_ready(page)
    retype_quoted(page, "Thank you, {name}.", "Draft says hello, {name}.")
    editor_ready(page)
    expect(page.locator("#graph svg")).to_contain_text("Draft says hello")

    phone = page.locator("#test-phone")
    runs = phone.get_by_label("Runs")
    expect(runs).to_have_value("draft")
    expect(runs.locator("option:checked")).to_have_text("the draft in the editor")
    phone.get_by_label("Platform").select_option("twiml")
    phone.get_by_role("button", name="Call").focus()
    page.keyboard.press("Enter")
    asking = phone.locator("#phone-asking")
    expect(asking).to_contain_text("Asks account")
    expect(phone.get_by_label("Keys")).to_be_focused()
    page.keyboard.type("1001")
    page.keyboard.press("Enter")
    expect(asking).to_contain_text("Asks pin")
    page.keyboard.type("2468")
    page.keyboard.press("Enter")

    transcript = phone.locator("#phone-transcript")
    expect(transcript).to_contain_text("hears: Draft says hello, Ada Lovelace.")
    expect(transcript).to_contain_text("(transferred to +13125550101)")
    expect(asking).to_contain_text("The call has left the flow")
    assert "Thank you" not in transcript.inner_text()
    # The path, lit on the editor's graph (the drawing of the edited text).
    lit = page.locator("#graph g.node.lit > title")
    expect(lit).to_have_count(len(VERIFIED_PATH))
    assert sorted(lit.all_text_contents()) == sorted(VERIFIED_PATH)
    page.screenshot(path=screenshot_path("studio-test-phone", tmp_path), full_page=True)

    # On a phone, the editor and the phone below it: nothing wider than the screen.
    page.set_viewport_size(PHONE)
    expect(phone).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    # The phone at the top of the screen, painted at the new width before the picture.
    phone.evaluate(
        "e => new Promise(r => { e.scrollIntoView({block: 'start'});"
        " requestAnimationFrame(() => requestAnimationFrame(r)); })"
    )
    page.screenshot(path=screenshot_path("studio-test-phone-390", tmp_path))

    # The published version still says what it said; no call, attempt or version written.
    assert "Thank you" in page.request.get(f"{base}/admin/flows/verify_caller/download").text()
    assert rows(app) == before


def test_the_call_page_draws_a_real_calls_path(
    browser: Browser, live: tuple[str, Flask], tmp_path: Path
) -> None:
    base, _app = live
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
    page = browser.new_page(viewport=DESKTOP)
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
    page.screenshot(path=screenshot_path("call-path", tmp_path), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    wide = page.evaluate(
        "Array.from(document.querySelectorAll('body *')).filter(e => "
        "e.getBoundingClientRect().right > 391).map(e => e.tagName + '.' + e.className"
        " + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 12)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
