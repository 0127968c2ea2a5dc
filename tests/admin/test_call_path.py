"""The call page: the call's path lit on the graph of the version it ran, and each
request and reply readable (indented XML, each in its own <details>)."""

from __future__ import annotations

import lxml.html
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Call
from tests.helpers.admin_pages import page
from tests.helpers.flows import VERIFIED_PATH
from tests.helpers.ifbyphone import answers, follow, send, the_call
from tests.helpers.voice_xml_caller import VoiceXmlCall


def lit(html: lxml.html.HtmlElement) -> tuple[list[str], list[str]]:
    """The titles of the lit nodes and edges of the page's inline graph."""
    svg = html.xpath("//div[@class='graph-inline']/*[local-name()='svg']")
    assert len(svg) == 1
    found: dict[str, list[str]] = {"node": [], "edge": []}
    for group in svg[0].xpath(".//*[local-name()='g'][contains(@class, 'lit')]"):
        kind = group.get("class").split()[0]
        found[kind] += group.xpath("./*[local-name()='title']/text()")
    return found["node"], found["edge"]


def test_a_verified_call_on_twiml_lights_its_path(
    admin_client: FlaskClient, client: FlaskClient, session: Session
) -> None:
    call = VoiceXmlCall(client, "twiml", "verify_caller", "CA-path-1")
    call.start()
    call.press("1001")
    call.press("2468")
    record = session.query(Call).filter_by(platform_call_id="CA-path-1").one()
    assert record.flow_version == 1
    html = page(admin_client.get(f"/admin/calls/{record.id}"))
    nodes, edges = lit(html)
    assert sorted(nodes) == sorted(VERIFIED_PATH)
    assert "start->question 1" in edges and "verify->outcome verified" in edges
    assert not any("retry" in node for node in nodes)
    # Each reply indented in a collapsible block, the last one open.
    replies = html.xpath("//ol[@class='events']/li//details[pre[@class='reply']]")
    assert len(replies) == 3
    assert [r.get("open") is not None for r in replies] == [False, False, True]
    last = replies[-1].xpath("./pre")[0].text_content()
    assert last.splitlines()[0] == "<Response>"
    assert "  <Say>Thank you, Ada Lovelace.</Say>" in last.splitlines()
    assert "(verified)" in replies[-1].xpath("./summary")[0].text_content()


def test_a_wrong_pin_on_ifbyphone_lights_the_retry(
    admin_client: FlaskClient, client: FlaskClient, session: Session
) -> None:
    reply = send(client, answers("s-path-2", "1001", "0000"))
    follow(client, "s-path-2", reply)  # the message read, then asked again
    record = the_call(session, "s-path-2")
    nodes, _ = lit(page(admin_client.get(f"/admin/calls/{record.id}")))
    assert "outcome retry" in nodes and "retry step 2" in nodes  # asked again
    assert "outcome verified" not in nodes
    assert "verify" in nodes and "question 2" in nodes


def test_a_call_from_before_versions_has_no_graph(
    admin_client: FlaskClient, session: Session
) -> None:
    session.add(Call(platform="twiml", platform_call_id="CA-old", flow="verify_caller"))
    session.commit()
    record = session.query(Call).filter_by(platform_call_id="CA-old").one()
    html = page(admin_client.get(f"/admin/calls/{record.id}"))
    assert not html.xpath("//*[local-name()='svg']")
    assert "No graph" in html.text_content()
