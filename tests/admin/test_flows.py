"""The admin flow pages: every flow file with its check status, and a flow's graph
served as an image that cannot run script (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import lxml.html
import pytest
from flask.testing import FlaskClient
from lxml import etree

from app.flows import graph
from app.flows.graph import GraphError
from app.flows.model import Flow
from tests.helpers.admin_pages import cells, edit, page, rows
from tests.helpers.flows import shipped_copy

BROKEN = """\
description: A flow with a typo.
questions:
  - {name: account, type: digits}
  - {name: pin, type: digits, secret: true}
verify: {by: account, claim: account, pin: pin}
on:
  verified: [{transfr: verified}]
  failed: [hangup]
"""


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows, for the tests to break."""
    return shipped_copy(tmp_path / "flows")


def test_every_flow_file_is_listed_ok(admin_client: FlaskClient) -> None:
    table = rows(admin_client.get("/admin/flows"), "flows")
    assert [row.get("id") for row in table] == ["flow-group_line", "flow-verify_caller"]
    for row in table:
        assert cells(row)[2] == "OK"
    assert table[1].xpath("./td[1]/a/@href") == ["/admin/flows/verify_caller"]
    assert cells(table[1])[1] == "verify_caller.yaml"


def test_broken_files_show_their_problems_when_the_page_is_opened(
    admin_client: FlaskClient, flows_dir: Path
) -> None:
    # Written after start-up (a broken file would stop it), as an admin edits.
    edit(flows_dir / "broken.yaml", BROKEN)
    shipped = flows_dir / "group_line.yaml"
    edit(shipped, shipped.read_text(encoding="utf-8").replace("verify:", "verify: [", 1))

    response = admin_client.get("/admin/flows")
    by_name = {row.get("id"): row for row in rows(response, "flows")}
    assert list(by_name) == ["flow-broken", "flow-group_line", "flow-verify_caller"]
    broken = by_name["flow-broken"]
    assert cells(broken)[2].startswith("1 problem (not in use)")
    [problem] = broken.xpath(".//ul[@class='problems']/li")
    assert problem.text_content().startswith("broken.yaml:7: on.verified[0].transfr: unknown step")
    group_line = by_name["flow-group_line"]
    assert "(the published version stays in use)" in cells(group_line)[2]
    assert group_line.xpath("./td[4]//*[@class='differs']")
    [yaml_problem] = group_line.xpath(".//ul[@class='problems']/li")
    assert yaml_problem.text_content().startswith("group_line.yaml:")
    assert str(flows_dir) not in response.get_data(as_text=True)  # no server paths
    assert cells(by_name["flow-verify_caller"])[2] == "OK"

    detail = page(admin_client.get("/admin/flows/broken"))
    assert "unknown step" in detail.text_content()
    assert not detail.xpath("//img")  # never loaded: nothing to draw
    assert admin_client.get("/admin/flows/broken.svg").status_code == 404

    # Mended: OK again at once.
    edit(flows_dir / "broken.yaml", BROKEN.replace("transfr", "transfer"))
    mended = rows(admin_client.get("/admin/flows"), "flows")
    assert cells(mended[0])[2] == "OK"


def test_a_flow_page_shows_its_graph_as_an_image_not_inline(admin_client: FlaskClient) -> None:
    response = admin_client.get("/admin/flows/verify_caller")
    detail = page(response)
    assert detail.xpath("//main//img/@src") == ["/admin/flows/verify_caller.svg"]
    assert not detail.xpath("//svg") and "<svg" not in response.get_data(as_text=True)


def test_the_graph_is_svg_under_a_policy_that_runs_no_script(
    admin_client: FlaskClient, graphviz_dot: None
) -> None:
    response = admin_client.get("/admin/flows/verify_caller.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(response.data, parser)
    assert etree.QName(root).localname == "svg"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/flows/nothing_here",
        "/admin/flows/nothing_here.svg",
        "/admin/flows/..%2Fsecrets",
        "/admin/flows/verify_caller.yaml",
        "/admin/flows/status",
    ],
)
def test_unknown_flows_are_404(admin_client: FlaskClient, path: str) -> None:
    response = admin_client.get(path)
    assert response.status_code == 404
    assert "There is nothing here." in lxml.html.fromstring(response.data).text_content()


def test_a_graph_graphviz_cannot_draw_is_503_and_the_page_still_shows(
    admin_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(flow: Flow, fmt: str = "svg") -> bytes:
        raise GraphError("Graphviz's dot program is not installed")

    monkeypatch.setattr(graph, "render", fail)
    assert admin_client.get("/admin/flows/verify_caller").status_code == 200
    response = admin_client.get("/admin/flows/verify_caller.svg")
    assert response.status_code == 503
    assert "see the server's log" in lxml.html.fromstring(response.data).text_content()


def test_a_broken_edit_found_by_the_page_is_logged_and_the_published_version_serves(
    admin_client: FlaskClient, flows_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    registry_logger = logging.getLogger("app.flows.registry")
    registry_logger.addHandler(caplog.handler)  # the "app" logger does not propagate
    try:
        shipped = flows_dir / "verify_caller.yaml"
        edit(shipped, shipped.read_text(encoding="utf-8").replace("verify:", "verify: [", 1))
        admin_client.get("/admin/flows")
        app = admin_client.application
        with app.app_context():
            from app.flows.registry import get_flow

            still = get_flow("verify_caller")
    finally:
        registry_logger.removeHandler(caplog.handler)
    # Distinct records: one may reach the capture both here and through the root.
    records = {id(r): r for r in caplog.records if r.name == "app.flows.registry"}
    logged = [r.getMessage() for r in records.values()]
    assert len(logged) == 1 and logged[0].startswith("flow verify_caller not published")
    assert "verify_caller.yaml:" in logged[0]
    assert still is not None and still.name == "verify_caller"
    assert still.version == 1  # the published version, not the broken file
