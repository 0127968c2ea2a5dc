"""The admin pages in a real browser (headless Debian Chromium, Playwright): an admin
signs in, unlocks a user locked out through the IfbyPhone hook, and sees it recorded;
reads the overview on a phone, in light and dark.

The app is served by a real WSGI server in a thread, over a migrated SQLite
database holding the demo directory (`live`, in tests/conftest.py). Skipped when
/usr/bin/chromium is missing, unless GLUE_TEST_REQUIRE_BROWSER=1. With
GLUE_UPDATE_SCREENSHOTS=1 it also rewrites docs/images/overview-*.png and
docs/images/calls-filtered.png.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from flask import Flask
from playwright.sync_api import Browser, expect

from tests.helpers.browser import PHONE, screenshot_path
from tests.helpers.settings import TEST_SECRETS


def lock_out(base: str, account: str) -> None:
    """Five wrong PINs, one call each, posted as IfbyPhone posts them."""
    for n in range(5):
        response = requests.post(
            f"{base}/ifbyphone/verify_caller",
            params={"key": TEST_SECRETS["IFBYPHONE_SECRET"]},
            data={"session_id": f"s-browser-{n}", "caller_id": "3125550199", "p_t": ""}
            | {"account": account, "pin": "0000"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    assert "This account is locked" in response.text


def test_an_admin_unlocks_a_locked_user(browser: Browser, live_base: str) -> None:
    lock_out(live_base, "1002")
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(f"{live_base}/admin/locks")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Account number").fill("1001")
    page.get_by_label("Password").fill("ada-demo-1")
    page.get_by_role("button", name="Sign in").click()

    # Back where she was going: Grace is locked.
    expect(page.get_by_role("heading", name="Locks")).to_be_visible()
    row = page.locator("#user-1002")
    expect(row).to_contain_text("Grace Hopper")
    expect(row).to_contain_text("Locked until")
    expect(page.locator("#admin-actions")).to_have_count(0)

    page.get_by_role("button", name="Unlock user 1002").click()
    expect(page.get_by_role("status")).to_have_text("Unlocked user 1002.")
    expect(page.locator("#user-1002")).to_have_count(0)
    action = page.locator("#admin-actions tbody tr")
    expect(action).to_have_count(1)
    expect(action).to_contain_text("Ada Lovelace (1001)")
    expect(action).to_contain_text("unlock")
    expect(action).to_contain_text("user 1002")

    # The calls that locked her out, each with its events and replies.
    page.goto(f"{live_base}/admin/calls")
    calls = page.locator("#calls tbody tr")
    expect(calls).to_have_count(5)
    expect(calls.first).to_contain_text("s-browser-4")
    calls.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Call 5")).to_be_visible()
    event = page.locator("li[id^='event-']")
    expect(event).to_have_count(1)
    expect(event).to_contain_text('"pin": "***"')
    expect(event).to_contain_text("This account is locked")
    assert "0000" not in page.content()

    # And the attempts: four wrong PINs, then the one that locked.
    page.goto(f"{live_base}/admin/attempts")
    attempts = page.locator("#attempts tbody tr")
    expect(attempts).to_have_count(5)
    expect(attempts.first).to_contain_text("locked_now")
    expect(attempts.nth(4)).to_contain_text("wrong_pin")

    if shutil.which("dot") is None:
        return  # Graphviz missing: no graph to see (tests/admin/test_flows.py)
    # The flow's graph is an image, and it loads under the pages' policy.
    page.goto(f"{live_base}/admin/flows/verify_caller")
    graph = page.get_by_role("img", name="Graph of the flow verify_caller")
    expect(graph).to_be_visible()
    page.wait_for_function("document.querySelector('img.graph').complete")
    assert graph.evaluate("img => img.naturalWidth") > 0


def test_an_admin_rolls_a_flow_back(
    browser: Browser, live: tuple[str, Flask], flows_dir: Path, tmp_path: Path
) -> None:
    """A second version published from a checkout, then rolled back from the history page."""
    live_base, app = live
    edited = tmp_path / "checkout" / "verify_caller.yaml"
    edited.parent.mkdir()
    source = (flows_dir / "verify_caller.yaml").read_text(encoding="utf-8")
    edited.write_text(source.replace("Thank you, {name}.", "Welcome back, {name}."), "utf-8")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["forms", "publish"]).exit_code == 0  # the files: v1
    published = runner.invoke(args=["forms", "publish", str(edited)])
    assert published.exit_code == 0 and "published v2" in published.output, published.output

    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(f"{live_base}/admin/flows/verify_caller/versions")
    page.get_by_label("Account number").fill("1001")
    page.get_by_label("Password").fill("ada-demo-1")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Versions of verify_caller")).to_be_visible()
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Diff with v1").click()
    expect(page.locator("pre.diff .add")).to_contain_text(["Welcome back"])
    page.go_back()

    page.get_by_role("button", name="Rollback verify_caller to v1").click()
    expect(page.get_by_role("status")).to_have_text(
        "Rolled verify_caller back to version 1: published as version 3."
    )
    newest = page.locator("#versions tbody tr").first
    expect(newest).to_contain_text("v3")
    expect(newest).to_contain_text("admin:1001")
    expect(newest).to_contain_text("rollback to 1")


def play_calls(base: str) -> None:
    """Calls as IfbyPhone posts them: three verified, five that lock Grace out,
    and one DIDforSale call whose caller has keyed nothing yet."""
    key = {"key": TEST_SECRETS["IFBYPHONE_SECRET"]}
    for n in range(3):
        fields = {"session_id": f"s-ok-{n}", "caller_id": "3125550101", "p_t": ""}
        fields |= {"account": "1001", "pin": "2468"}
        response = requests.post(
            f"{base}/ifbyphone/verify_caller", params=key, data=fields, timeout=10
        )
        assert response.status_code == 200, response.text
    lock_out(base, "1002")
    started = requests.post(
        f"{base}/didml/verify_caller",
        params={"key": TEST_SECRETS["DIDML_SECRET"]},
        data={"callSid": "d-waiting", "From": "+13125550177", "To": "+18005551212"},
        timeout=10,
    )
    assert started.status_code == 200, started.text


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_an_admin_reads_the_overview_on_a_phone(
    browser: Browser, live_base: str, tmp_path: Path, scheme: str
) -> None:
    play_calls(live_base)
    page = browser.new_page(viewport=PHONE, color_scheme=scheme)  # type: ignore[arg-type]
    page.goto(f"{live_base}/admin/")
    page.get_by_label("Account number").fill("1001")
    page.get_by_label("Password").fill("ada-demo-1")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    chart = page.get_by_role("img", name="Calls per hour, by platform")
    expect(chart).to_be_visible()
    funnel = page.get_by_role("img", name="Verification funnel of verify_caller")
    expect(funnel).to_be_visible()
    # Nothing wider than the phone: the page never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = chart.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]
    # Labels at least 10 px high once scaled to the phone's width.
    label = funnel.locator("text.label").first
    assert label.evaluate("t => t.getBoundingClientRect().height") >= 10

    # The colours follow the scheme: text reads on the page's background.
    text_fill = label.evaluate("t => getComputedStyle(t).fill")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    bar_fill = chart.locator("rect.s0").first.evaluate("r => getComputedStyle(r).fill")
    if scheme == "dark":
        assert (text_fill, background) == ("rgb(236, 236, 236)", "rgb(20, 20, 20)")
        assert bar_fill == "rgb(108, 178, 255)"
    else:
        assert (text_fill, background) == ("rgb(27, 27, 27)", "rgb(255, 255, 255)")
        assert bar_fill == "rgb(31, 111, 197)"

    # The numbers behind a chart, for those who cannot see it.
    figure = page.locator("figure#funnel-verify_caller")
    figure.get_by_text("The numbers").click()
    called = figure.locator("tbody tr", has_text="called")
    expect(called.locator("td")).to_have_text("9")
    expect(figure.locator("tbody tr", has_text="locked").locator("td")).to_have_text("1")
    page.screenshot(path=screenshot_path(f"overview-{scheme}", tmp_path), full_page=True)

    # The calls list, filtered on the phone.
    page.goto(f"{live_base}/admin/calls")
    page.get_by_label("Outcome").select_option("locked")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#calls tbody tr")).to_have_count(1)
    expect(page.locator("#calls tbody tr")).to_contain_text("s-browser-4")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1 or (
        page.locator(".table-wrap").first.evaluate("w => w.scrollWidth > w.clientWidth")
    )
    if scheme == "light":
        page.screenshot(path=screenshot_path("calls-filtered", tmp_path))
