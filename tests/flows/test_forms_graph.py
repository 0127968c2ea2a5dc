"""Drawing flows: `render(flow, fmt)` and `flask forms graph`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from lxml import etree

from app import create_app
from app.flows.graph import GraphError, render
from app.flows.loader import load_flow
from app.flows.model import Flow
from tests.helpers.settings import PROJECT_ROOT, TEST_SECRETS

pytestmark = pytest.mark.usefixtures("graphviz_dot")

FLOWS = PROJECT_ROOT / "survo_forms"
SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def parse(svg: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(svg, parser)


def node_labels(svg: bytes) -> dict[str, str]:
    """Node title (its id) -> label, its text lines joined by spaces."""
    labels = {}
    for node in parse(svg).iter(f"{SVG}g"):
        if node.get("class") == "node":
            title = node.findtext(f"{SVG}title")
            labels[title] = " ".join(text.text or "" for text in node.iter(f"{SVG}text"))
    return labels


def edges(svg: bytes) -> set[str]:
    """Each edge as "tail->head" (node ids, ports left out)."""
    titles = [
        str(g.findtext(f"{SVG}title"))
        for g in parse(svg).iter(f"{SVG}g")
        if g.get("class") == "edge"
    ]
    return {"->".join(end.split(":")[0] for end in title.split("->")) for title in titles}


def load(name: str) -> Flow:
    return load_flow(FLOWS / f"{name}.yaml")


# --- render -------------------------------------------------------------------


def test_verify_caller_svg_has_every_part() -> None:
    svg = render(load("verify_caller"), "svg")

    labels = node_labels(svg)
    assert labels["question 1"] == "1. account digits, 1-10 digits"
    assert labels["question 2"] == "2. pin digits, 4-8 digits, secret"
    assert labels["verify"] == "Verify claim by account: account PIN: pin 3 wrong PINs allowed"
    for outcome in ("verified", "retry", "failed", "locked", "no_input", "error"):
        assert labels[f"outcome {outcome}"].split()[0] == outcome
    assert labels["verified step 1"] == "Say \u201cThank you, {name}.\u201d"
    assert labels["verified step 2"] == "Transfer to the verified user's phone"
    assert labels["failed step 2"] == "Voicemail box 200"
    assert labels["locked step 2"] == "Hang up"
    assert labels["retry step 2"] == "Ask again account, pin"
    # In order: call, questions, check, outcome, its steps; ask again goes back.
    assert {
        "start->question 1",
        "question 1->question 2",
        "question 2->verify",
        "verify->outcome verified",
        "outcome verified->verified step 1",
        "verified step 1->verified step 2",
        "retry step 2->question 1",
    } <= edges(svg)


def test_group_line_svg_has_every_part() -> None:
    labels = node_labels(render(load("group_line")))

    assert labels["question 1"].startswith("1. group")
    assert labels["verify"].startswith("Verify claim by group: group PIN: pin")
    assert labels["verified step 1"] == "Say \u201cWelcome, {name}.\u201d"
    assert labels["verified step 2"] == "Find Me the verified group's phones"
    assert labels["failed step 2"] == "Hang up"
    assert labels["retry step 2"] == "Ask again group, pin"


def test_svg_is_a_bare_self_contained_element() -> None:
    svg = render(load("verify_caller"))

    assert svg.startswith(b"<svg")  # no XML declaration or DOCTYPE to break a page
    assert b"<!--" not in svg and b"<!DOCTYPE" not in svg
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert not [el for el in root.iter() if el.tag in (f"{SVG}script", f"{SVG}image")]
    assert b"href" not in svg  # nothing loaded from elsewhere


def test_png_is_a_png() -> None:
    assert render(load("group_line"), "png").startswith(PNG_MAGIC)


def test_other_formats_are_refused() -> None:
    with pytest.raises(ValueError, match="svg, png"):
        render(load("group_line"), "pdf")


HOSTILE = 'Hi </text><script>alert(1)</script> & "q" \\N \\G \\l C:\\new &lt; {name}'


def test_hostile_labels_are_text(tmp_path: Path) -> None:
    # Single-quoted YAML: every character arrives as written.
    say = HOSTILE.replace("'", "''")
    path = tmp_path / "hostile.yaml"
    path.write_text(
        'description: "<svg onload=alert(1)> \\" &amp;"\n'
        "questions:\n"
        "  - {name: account, type: digits}\n"
        "  - {name: pin, type: digits}\n"
        "verify: {by: account, claim: account, pin: pin}\n"
        "on:\n"
        f"  verified: [{{say: '{say}'}}, {{say: '<b>x</b>'}}, {{transfer: verified}}]\n"
        "  failed: [{say: '\"'}, {play: 'https://x.example/<a>.wav'}, hangup]\n"
    )
    flow = load_flow(path)

    svg = render(flow)

    root = parse(svg)  # still well-formed XML
    tags = {el.tag for el in root.iter() if isinstance(el.tag, str)}
    assert tags <= {
        f"{SVG}{name}"
        for name in ("svg", "g", "title", "text", "path", "polygon", "ellipse", "polyline")
    }
    labels = node_labels(svg)
    assert labels["verified step 1"] == f"Say \u201c{HOSTILE}\u201d"
    assert labels["verified step 2"] == "Say \u201c<b>x</b>\u201d"
    assert labels["failed step 1"] == 'Say \u201c"\u201d'
    assert labels["failed step 2"] == "Play https://x.example/<a>.wav"
    title = root.findtext(f"{SVG}g/{SVG}text")
    assert title == 'hostile: <svg onload=alert(1)> " &amp;'
    assert b"<script" not in svg and b"<b>" not in svg and b"<svg onload" not in svg


def test_a_flow_name_that_is_not_a_flow_name_is_not_used_as_the_graph_name() -> None:
    flow = load("group_line")
    odd = Flow(**{**flow.__dict__, "name": "x--><script>"})

    root = parse(render(odd))

    assert root.findtext(f"{SVG}g/{SVG}title") == "flow"


def test_missing_dot_is_a_graph_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot there

    with pytest.raises(GraphError, match="apt-get install graphviz"):
        render(load("group_line"))


# --- flask forms graph --------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskCliRunner]:
    flows_dir = tmp_path / "flows"
    shutil.copytree(FLOWS, flows_dir)
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
        "FLOWS_DIR": str(flows_dir),
        "FLOWS_RELOAD_SECONDS": 0,
        **TEST_SECRETS,
    }
    app = create_app(config, instance_path=str(tmp_path / "instance"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield app.test_cli_runner()
    app.extensions["glue.engine"].dispose()


def test_graph_writes_into_the_instance_folder(cli: FlaskCliRunner, tmp_path: Path) -> None:
    result = cli.invoke(args=["forms", "graph", "verify_caller"])

    assert result.exit_code == 0, result.output
    written = tmp_path / "instance" / "graphs" / "verify_caller.svg"
    assert result.output == f"{written}\n"
    assert node_labels(written.read_bytes())["outcome verified"].startswith("verified")
    assert list((tmp_path / "work").iterdir()) == []  # nothing in the current folder


def test_graph_png_to_a_named_file(cli: FlaskCliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out.png"

    result = cli.invoke(args=["forms", "graph", "group_line", "--format", "png", "-o", str(out)])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_graph_a_yaml_file(cli: FlaskCliRunner, tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    shutil.copy(FLOWS / "group_line.yaml", draft)

    result = cli.invoke(args=["forms", "graph", str(draft)])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "instance" / "graphs" / "draft.svg").is_file()


@pytest.mark.parametrize("name", ["nope", "../flows/verify_caller", "verify_caller.yml"])
def test_graph_unknown_flow(cli: FlaskCliRunner, tmp_path: Path, name: str) -> None:
    result = cli.invoke(args=["forms", "graph", name])

    assert result.exit_code == 1
    assert f"Error: no flow '{name}' in {tmp_path / 'flows'}" in result.output
    assert "flows are: group_line, verify_caller)" in result.output
    assert list((tmp_path / "work").iterdir()) == []


def test_graph_guesses_a_misspelt_flow(cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["forms", "graph", "verify_caler"])

    assert result.exit_code == 1
    assert "(did you mean verify_caller? flows are: group_line, verify_caller)" in result.output


def test_graph_broken_flow(cli: FlaskCliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "flows" / "broken.yaml"
    broken.write_text("questions: []\n")

    result = cli.invoke(args=["forms", "graph", "broken"])

    assert result.exit_code == 1
    assert f"Error: {broken} has 3 problems: run `flask forms check {broken}`" in result.output


def test_graph_without_dot(
    cli: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    result = cli.invoke(args=["forms", "graph", "group_line"])

    assert result.exit_code == 1
    assert "Error: Graphviz's dot program is not installed" in result.output
