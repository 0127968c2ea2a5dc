"""The flow editor driven as an admin drives it, in a browser: waiting until it
has checked and drawn its text, and editing a line by keyboard."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def editor_ready(page: Page) -> None:
    """The editor is up, its text passes the check, and its graph is drawn."""
    expect(page.locator(".cm-content")).to_be_visible()
    expect(page.locator("#check-status")).to_have_text("No problems: this text passes the check.")
    # Graphviz takes its time on a busy machine: the drawing is not what is timed.
    expect(page.locator("#graph svg")).to_be_visible(timeout=20_000)


def go_to_line_end(page: Page, text: str) -> None:
    """Put the cursor at the end of the editor line holding text (found by the
    editor's own search, as an admin would, then End)."""
    page.locator(".cm-content").focus()
    page.keyboard.press("Control+Home")
    page.keyboard.press("Control+f")
    search = page.locator(".cm-search input[name=search]")
    expect(search).to_be_focused()
    page.keyboard.type(text)  # typed: the panel reads its field on each key
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")  # back in the text, the match selected
    expect(page.locator(".cm-content")).to_be_focused()
    page.keyboard.press("End")
    line = page.evaluate(
        "(() => { const s = window.glueStudio.view.state;"
        " return s.doc.lineAt(s.selection.main.head).text; })()"
    )
    assert text in line, line


def retype_quoted(page: Page, old: str, new: str) -> None:
    """Replace old, the quoted text that ends its line, by new, keyed in."""
    go_to_line_end(page, old)
    page.keyboard.press("ArrowLeft")  # before the closing quote
    for _ in old:
        page.keyboard.press("Backspace")
    page.keyboard.type(new)
