"""The admin pages' people and their parsed HTML: pages, tables, rows, cells."""

from __future__ import annotations

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
