"""What the browser tests share: where their screenshots go, signing in on the
sign-in page, and the width of a phone. The browser itself is the `browser`
fixture (tests/conftest.py), the app it talks to `live`."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, ViewportSize

from tests.helpers.settings import PROJECT_ROOT

DOCS_IMAGES = PROJECT_ROOT / "docs" / "images"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


def screenshot_path(name: str, tmp_path: Path) -> str:
    """docs/images/<name>.png with GLUE_UPDATE_SCREENSHOTS=1 (the docs show these),
    else the test's temporary folder: a test run leaves the checkout as it was."""
    folder = DOCS_IMAGES if os.environ.get("GLUE_UPDATE_SCREENSHOTS") == "1" else tmp_path
    return str(folder / f"{name}.png")


def sign_in(
    page: Page, base: str, path: str, account: str = "1001", password: str = "ada-demo-1"
) -> None:
    """Open path, which asks to sign in first, and sign in by keyboard (Ada, an
    admin, by default): back on path after."""
    page.goto(f"{base}{path}")
    page.get_by_label("Account number").fill(account)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
