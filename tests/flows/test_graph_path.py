"""A call's path on the flow's graph: which nodes its turns went through, and the
SVG with them lit."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from app.flows import graph
from app.flows.loader import load_flow
from app.flows.model import Flow
from tests.helpers.flows import VERIFIED_PATH

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def flow(flows_dir: Path) -> Flow:
    return load_flow(flows_dir / "verify_caller.yaml")


def test_one_question_a_turn_then_the_check(flow: Flow) -> None:
    assert graph.call_path(flow, ["asking", "asking", "verified"]) == list(VERIFIED_PATH)


def test_all_answers_at_once_then_retry_and_silence(flow: Flow) -> None:
    path = graph.call_path(flow, ["retry", "retry", "no_input", "ended", None])
    assert path == [
        "start",
        "question 1",
        "question 2",
        "verify",
        "outcome retry",
        "retry step 1",
        "retry step 2",
        *["question 1", "question 2", "verify", "outcome retry", "retry step 1", "retry step 2"],
        "outcome no_input",
        "no_input step 1",
        "no_input step 2",
    ]


def test_steps_run_to_where_the_call_leaves_the_flow(flow: Flow) -> None:
    failed = ["outcome failed", "failed step 1", "failed step 2"]
    assert graph.outcome_path(flow, "failed") == failed
    # A continuation names its steps only.
    assert graph.outcome_path(flow, "verified", 1, 2) == ["verified step 2"]


def test_the_svg_lights_the_nodes_and_edges_of_the_path(flow: Flow, graphviz_dot: None) -> None:
    svg = graph.render(flow, "svg")
    path = graph.call_path(flow, ["verified"])
    root = etree.fromstring(graph.highlighted(svg, path))
    lit = {
        (g.get("class"), g.findtext(f"{SVG}title"))
        for g in root.iter(f"{SVG}g")
        if "lit" in (g.get("class") or "")
    }
    assert ("node lit", "verify") in lit and ("node lit", "verified step 2") in lit
    assert ("edge lit", "question 2->verify") in lit
    assert ("edge lit", "verify->outcome retry") not in lit
    # The edge back to the questions leaves and enters by ports: lit all the same.
    again = etree.fromstring(graph.highlighted(svg, graph.call_path(flow, ["retry", "verified"])))
    edges = [
        g.findtext(f"{SVG}title") for g in again.iter(f"{SVG}g") if g.get("class") == "edge lit"
    ]
    assert "retry step 2:s->question 1:s" in edges
    assert {title for kind, title in lit if kind == "node lit"} == set(path)
    # Every node of the path is a node of the graph.
    titles = {g.findtext(f"{SVG}title") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    titles |= {t for k, t in lit if k == "node lit"}
    assert set(path) <= titles
