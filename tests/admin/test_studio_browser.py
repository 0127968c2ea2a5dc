"""The flow editor in a real browser (headless Debian Chromium, Playwright): a typed
mistake marked at its line within a second, a publish that the next call runs, a
new flow written from scratch, the graph's zoom and full size, and the page used
by keyboard alone at 390 px wide. With GLUE_UPDATE_SCREENSHOTS=1 it also
rewrites docs/images/studio-*.png.

Skipped when /usr/bin/chromium is missing, unless GLUE_TEST_REQUIRE_BROWSER=1;
the graph needs Graphviz's dot likewise.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import lxml.etree
import pytest
import requests
from flask import Flask
from playwright.sync_api import Browser, expect

from tests.helpers.browser import DESKTOP, PHONE, screenshot_path, sign_in
from tests.helpers.flows import shipped_copy
from tests.helpers.settings import TEST_SECRETS
from tests.helpers.studio import editor_ready, go_to_line_end, retype_quoted

_sessions = itertools.count(1)


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows: the tests publish new ones."""
    return shipped_copy(tmp_path / "forms")


@pytest.fixture
def live(live: tuple[str, Flask], graphviz_dot: None) -> tuple[str, Flask]:
    """The live app, with Graphviz to draw the editor's graph."""
    return live


def ifbyphone_says(base: str, flow: str) -> str | None:
    """What a new call to flow says to Ada after her account and PIN, as IfbyPhone sends it."""
    response = requests.post(
        f"{base}/ifbyphone/{flow}",
        params={"key": TEST_SECRETS["IFBYPHONE_SECRET"]},
        data={
            "session_id": f"s-studio-{next(_sessions)}",
            "caller_id": "3125550199",
            "p_t": "",
            "account": "1001",
            "pin": "2468",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    action = lxml.etree.fromstring(response.content)
    return action.findtext("parameters/user_parameters/message")


def test_a_typed_mistake_is_marked_at_its_line_and_a_publish_reaches_the_next_call(
    live: tuple[str, Flask], browser: Browser, tmp_path: Path
) -> None:
    base, _app = live
    assert ifbyphone_says(base, "verify_caller") == "Thank you, Ada Lovelace."
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, base, "/admin/flows/verify_caller/edit")
    editor_ready(page)
    changes = page.evaluate_handle(
        """() => { const seen = [];
        document.addEventListener('glue-studio:change', (e) => seen.push(e.detail.text));
        return seen; }"""
    )

    # verify's `pin: pin` (line 63) made to name a question there is not.
    go_to_line_end(page, "  pin: pin")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    typed = time.monotonic()
    page.keyboard.type("code")
    mark = page.locator(".cm-lintRange-error")
    expect(mark).to_have_text("pin: code", timeout=1500)
    assert time.monotonic() - typed < 1.5  # typing four keys, then marked within a second
    expect(page.locator("#check-status")).to_have_text("1 problem.")
    problem = page.locator("#problems li")
    expect(problem).to_have_count(1)
    expect(problem).to_have_attribute("data-line", "63")
    expect(problem).to_contain_text("Line 63: verify.pin: no question named code")
    expect(problem).to_contain_text("(hint: questions are: account, pin)")
    expect(page.locator(".cm-lint-marker-error")).to_have_count(1)
    expect(page.locator("#graph-status")).to_contain_text("last text that passed")
    assert "pin: code" in page.evaluate("window.glueStudio.getText()")
    assert changes.evaluate("seen => seen.length") >= 4
    page.screenshot(path=screenshot_path("studio-mistake", tmp_path))

    # A refused publish, said by the server, the text kept.
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#refused")).to_have_text(
        "verify_caller was not published: it has 1 problem."
    )
    editor_ready_with_problem = page.locator("#problems li")
    expect(editor_ready_with_problem).to_contain_text("Line 63")

    # Put right, and the greeting changed.
    go_to_line_end(page, "pin: code")
    for _ in "code":
        page.keyboard.press("Backspace")
    page.keyboard.type("pin")
    retype_quoted(page, "Thank you, {name}.", "Welcome back, {name}.")
    editor_ready(page)
    expect(page.locator("#graph svg")).to_contain_text("Welcome back")
    assert page.evaluate("window.glueStudio.highlight(['verify', 'outcome verified'])") == 2
    expect(page.locator("#graph g.node.lit")).to_have_count(2)

    page.get_by_label("Note for the version").fill("a warmer greeting")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(
        "Published verify_caller as version 2."
    )
    assert ifbyphone_says(base, "verify_caller") == "Welcome back, Ada Lovelace."
    page.get_by_role("link", name="every version").click()
    newest = page.locator("#versions tbody tr").first
    expect(newest).to_contain_text("admin:1001")
    expect(newest).to_contain_text("a warmer greeting")


def test_a_new_flow_from_scratch(live: tuple[str, Flask], browser: Browser, tmp_path: Path) -> None:
    base, _app = live
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, base, "/admin/flows")
    page.get_by_role("link", name="New flow").click()
    page.get_by_label("Name").fill("night_line")
    page.get_by_role("button", name="Write it").click()
    expect(page.get_by_role("heading", name="New flow night_line")).to_be_visible()
    editor_ready(page)

    # Its IfbyPhone SurVos, typed at the end.
    page.locator(".cm-content").focus()
    page.keyboard.press("Control+End")
    page.keyboard.type("ifbyphone: {survo: 4101, say_survo: 4102}\n")
    page.keyboard.press("Control+Home")
    page.keyboard.press("End")
    for _ in "Say what it is for.":
        page.keyboard.press("Backspace")
    page.keyboard.type("The night line.")
    editor_ready(page)
    page.screenshot(path=screenshot_path("studio-new-flow", tmp_path))

    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("heading", name="Flow night_line")).to_be_visible()
    expect(page.locator("#hook-ifbyphone")).to_contain_text("/ifbyphone/night_line?key=••••••••")
    assert ifbyphone_says(base, "night_line") == "Thank you, Ada Lovelace."


def test_by_keyboard_at_390_px_and_the_graph_zooms(
    live: tuple[str, Flask], browser: Browser, tmp_path: Path
) -> None:
    base, _app = live
    page = browser.new_page(viewport=PHONE)
    sign_in(page, base, "/admin/flows/verify_caller/edit")
    editor_ready(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # From the top of the page, Tab reaches the editor, and leaves it again.
    page.locator("body").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('cm-content')"):
            break
    else:
        pytest.fail("Tab never reached the editor")
    page.keyboard.press("Control+End")
    page.keyboard.type("# typed by keyboard\n")
    page.keyboard.press("Tab")
    assert not page.evaluate("document.activeElement.classList.contains('cm-content')")
    assert "# typed by keyboard" in page.evaluate("window.glueStudio.getText()")

    # The zoom buttons, by keyboard too.
    svg = page.locator("#graph svg")
    fitted = svg.evaluate("s => s.getBoundingClientRect().width")
    page.get_by_role("button", name="Zoom in").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    zoomed = svg.evaluate("s => s.getBoundingClientRect().width")
    assert zoomed > fitted * 1.5
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the box scrolls
    page.get_by_role("button", name="Full size").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#graph-full")
    expect(dialog).to_be_visible()
    expect(dialog.locator("svg")).to_be_visible()
    page.screenshot(path=screenshot_path("studio-390-graph", tmp_path))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Saved by keyboard (Ctrl+S in the editor): the draft survives a reload.
    page.locator(".cm-content").focus()
    page.keyboard.press("Control+s")
    expect(page.get_by_role("status").first).to_have_text("Draft saved.")
    editor_ready(page)
    assert "# typed by keyboard" in page.evaluate("window.glueStudio.getText()")
    page.screenshot(path=screenshot_path("studio-390", tmp_path))


def test_without_scripts_the_editor_is_a_form(live: tuple[str, Flask], browser: Browser) -> None:
    base, _app = live
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, base, "/admin/flows/verify_caller/edit")
    area = page.get_by_label("YAML of verify_caller")
    expect(area).to_be_visible()
    area.fill(area.input_value().replace("Thank you, {name}.", "Hello again, {name}."))
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(
        "Published verify_caller as version 2."
    )
    assert ifbyphone_says(base, "verify_caller") == "Hello again, Ada Lovelace."
    context.close()


def test_two_admins_on_one_flow(live: tuple[str, Flask], browser: Browser, tmp_path: Path) -> None:
    """The second publish on the same base is shown what changed, and publishes over it
    only when asked."""
    base, _app = live
    ada = browser.new_context(viewport=DESKTOP).new_page()
    admin = browser.new_context(viewport=DESKTOP).new_page()
    sign_in(ada, base, "/admin/flows/verify_caller/edit")
    sign_in(admin, base, "/admin/flows/verify_caller/edit", "1000", "admin-demo-1")
    for page, old, new in (
        (ada, "Thank you, {name}.", "Welcome back, {name}."),
        (admin, "Sorry, we could not verify you.", "Goodbye."),
    ):
        editor_ready(page)
        retype_quoted(page, old, new)
        editor_ready(page)

    admin.get_by_role("button", name="Publish", exact=True).click()
    expect(admin.get_by_role("status").first).to_contain_text("as version 2.")

    ada.get_by_role("button", name="Publish", exact=True).click()
    expect(ada.get_by_role("heading", name="verify_caller was published meanwhile")).to_be_visible()
    expect(ada.get_by_role("alert")).to_contain_text("published as version 2 since you started")
    expect(
        ada.locator("pre[aria-label='What was published since your draft started'] .add")
    ).to_contain_text(["Goodbye."])
    expect(
        ada.locator("pre[aria-label='What publishing your draft would change'] .del")
    ).to_contain_text(["Goodbye."])
    ada.screenshot(path=screenshot_path("studio-conflict", tmp_path), full_page=True)
    assert ifbyphone_says(base, "verify_caller") == "Thank you, Ada Lovelace."  # v2 kept hers

    # She takes her draft back to the editor, on top of v2, and puts Goodbye in too.
    ada.get_by_role("button", name="Edit my draft on top of v2").click()
    expect(ada.get_by_text("Draft saved.")).to_be_visible()
    editor_ready(ada)
    text = ada.evaluate("window.glueStudio.getText()")
    assert "Welcome back, {name}." in text and text.count("\n") > 100  # its lines kept
    retype_quoted(ada, "Sorry, we could not verify you.", "Goodbye.")
    editor_ready(ada)
    ada.get_by_role("button", name="Publish", exact=True).click()
    expect(ada.get_by_role("status").first).to_contain_text("as version 3.")
    assert ifbyphone_says(base, "verify_caller") == "Welcome back, Ada Lovelace."
