"""The admin pages' people and their parsed HTML: pages, tables, rows, cells."""

from __future__ import annotations

import os
from pathlib import Path

import lxml.html
from werkzeug.test import TestResponse

ADMIN_PASSWORD = "ruth-admin-1"
ADA_PASSWORD = "ada-demo-1"


def page(response: TestResponse) -> lxml.html.HtmlElement:
    assert response.status_code == 200, response.status_code
    return lxml.html.fromstring(response.get_data(as_text=True))


def text(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def cells(row: lxml.html.HtmlElement) -> list[str]:
    return [text(cell) for cell in row.xpath("./td")]


def rows(response: TestResponse, table: str) -> list[lxml.html.HtmlElement]:
    return list(page(response).xpath(f"//table[@id='{table}']/tbody/tr"))


def edit(path: Path, text: str) -> None:
    """Write a flow file as an admin would, seen as changed even within one clock tick."""
    mtime = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns <= mtime:
        os.utime(path, ns=(mtime + 1000, mtime + 1000))
