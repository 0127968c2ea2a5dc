"""Draw a flow: its questions, the check, each outcome's steps and where the call ends.

`render(flow, "svg")` is what the admin page serves (as an image) and `flask forms graph` saves.
Every label comes from a flow file an admin wrote, so it is only ever text: escaped
for DOT (never read as an HTML-like label or a `\\N`-style escape), and Graphviz
escapes it again for the SVG. The SVG returned is the bare `<svg>` element (no XML
declaration, DOCTYPE or comments) with nothing that loads from elsewhere.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence

import graphviz
from lxml import etree

from app.flows.loader import FLOW_NAME
from app.flows.model import Flow, Question
from app.neutral.outcomes import OUTCOMES
from app.neutral.steps import (
    VERIFIED,
    Ask,
    FindMe,
    Hangup,
    Pause,
    Play,
    RunForm,
    Say,
    SayDigits,
    Step,
    Transfer,
    VirtualReceptionist,
    Voicemail,
    is_final,
)

FORMATS = ("svg", "png")

# Node ids, which Graphviz writes as each node's <title> in the SVG: a call's
# path is drawn by naming them (see `call_path`, `highlighted`).
START = "start"
VERIFY = "verify"

# What each outcome means, under its name.
_MEANING = {
    "verified": "the PIN matched",
    "retry": "no match, tries left",
    "failed": "no match, no tries left",
    "locked": "locked out",
    "no_input": "caller said nothing",
    "error": "bad answer or a fault",
}
_OUTCOME_COLOURS = {
    "verified": "#d9f2d9",
    "retry": "#fff2cc",
    "failed": "#f8d7d4",
    "locked": "#f8d7d4",
    "no_input": "#e8e8e8",
    "error": "#e8e8e8",
}
# Rows top to bottom: retry last, so its edge back to the questions runs below
# every other row instead of across them.
_ROWS = (*(outcome for outcome in OUTCOMES if outcome != "retry"), "retry")
_SVG = "http://www.w3.org/2000/svg"
_SVG_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
)
_FONT = "Helvetica,Arial,sans-serif"
_WRAP = 34  # characters a label line


class GraphError(Exception):
    """Graphviz could not draw the flow: `dot` is not installed, or it failed."""


def render(flow: Flow, fmt: str = "svg") -> bytes:
    """The flow drawn as SVG (a bare, self-contained `<svg>` element, UTF-8) or PNG.

    Raises ValueError for another format and GraphError when Graphviz fails.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        data = build(flow).pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise GraphError(
            "Graphviz's dot program is not installed (Debian: apt-get install graphviz)"
        ) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise GraphError(f"Graphviz failed: {detail or exc}") from None
    return _bare_svg(data) if fmt == "svg" else data


def build(flow: Flow) -> graphviz.Digraph:
    """The flow as a Graphviz graph, left to right: questions, check, outcomes, steps."""
    name = flow.name if FLOW_NAME.fullmatch(flow.name) else "flow"
    title = f"{flow.name}: {flow.description}" if flow.description else flow.name
    dot = graphviz.Digraph(
        name=name,
        graph_attr={
            "rankdir": "LR",
            "label": _label(title, width=100),
            "labelloc": "t",
            "fontname": _FONT,
            "fontsize": "16",
            "nodesep": "0.25",
            "ranksep": "0.35",
            "bgcolor": "white",
        },
        node_attr={"fontname": _FONT, "fontsize": "11", "shape": "box", "style": "filled"},
        edge_attr={"fontname": _FONT, "fontsize": "9", "color": "#555555"},
    )
    dot.node(START, "Call", shape="circle", fillcolor="#dde7f5")

    question_ids = {q.name: question_node(flow, q.name) for q in flow.questions}
    with dot.subgraph(name="cluster_questions") as cluster:
        cluster.attr(label="Questions", style="rounded,dashed", color="#7a8fb0")
        for index, question in enumerate(flow.questions, 1):
            cluster.node(
                question_ids[question.name],
                _label(f"{index}. {question.name}", _question_details(question)),
                shape="box",
                style="rounded,filled",
                fillcolor="#dde7f5",
            )
    first = question_ids[flow.questions[0].name] if flow.questions else VERIFY
    dot.edge(START, first)
    for before, after in zip(flow.questions, flow.questions[1:], strict=False):
        dot.edge(question_ids[before.name], question_ids[after.name])
    last = question_ids[flow.questions[-1].name] if flow.questions else START

    dot.node(
        VERIFY,
        _label("Verify", *_verify_lines(flow)),
        shape="hexagon",
        margin="0,0.05",
        fillcolor="#ffffff",
    )
    dot.edge(last, VERIFY)

    for outcome in _ROWS:
        outcome_id = outcome_node(outcome)
        dot.node(
            outcome_id,
            _label(outcome, _MEANING[outcome]),
            shape="ellipse",
            fillcolor=_OUTCOME_COLOURS[outcome],
        )
        dot.edge(VERIFY, outcome_id)
        previous = outcome_id
        for index, step in enumerate(flow.outcomes.get(outcome, ())):
            step_id = step_node(outcome, index)
            _step_node(dot, step_id, step, flow)
            dot.edge(previous, step_id)
            previous = step_id
            if isinstance(step, Ask):
                asked = [name for name in step.questions if name in question_ids]
                target = question_ids[asked[0]] if asked else first
                # Back to the questions: drawn, but not allowed to pull the layout.
                dot.edge(
                    step_id,
                    target,
                    label="ask again",
                    tailport="s",
                    headport="s",
                    style="dashed",
                    color="#b08a00",
                    fontcolor="#b08a00",
                    constraint="false",
                )
    return dot


def question_node(flow: Flow, name: str) -> str:
    """The node of the flow's question called name."""
    number = next((i for i, q in enumerate(flow.questions, 1) if q.name == name), 0)
    return f"question {number}"


def outcome_node(outcome: str) -> str:
    return f"outcome {outcome}"


def step_node(outcome: str, index: int) -> str:
    """The node of step `index` (from 0, as the engine counts) of an outcome's sequence."""
    return f"{outcome} step {index + 1}"


def outcome_path(flow: Flow, outcome: str, start: int = 0, stop: int | None = None) -> list[str]:
    """The outcome's node (when its sequence starts here) and its steps from
    `start` to `stop`, or to where the call leaves the flow or is asked again."""
    steps = flow.outcomes.get(outcome, ())
    if stop is None:
        stop = next((i + 1 for i, step in enumerate(steps) if is_final(step)), len(steps))
        stop = max(stop, start)
    head = [outcome_node(outcome)] if start == 0 and outcome in OUTCOMES else []
    return head + [step_node(outcome, i) for i in range(start, min(stop, len(steps)))]


# Outcomes a PIN check leads to; the others come from silence or a bad answer.
CHECKED = frozenset({"verified", "retry", "failed", "locked"})


def call_path(flow: Flow, outcomes: Sequence[str | None]) -> list[str]:
    """The nodes a past call went through, from the outcome stored with each of
    its turns. A turn that asks one question (`asking`) asks the next in order;
    a turn that checked a PIN had every question answered; each outcome runs
    its steps to where the call leaves the flow or is asked again."""
    path = [START]
    asked = 0
    for outcome in outcomes:
        if outcome == "asking" and flow.questions:
            asked = min(asked + 1, len(flow.questions))
            path.append(question_node(flow, flow.questions[asked - 1].name))
        elif outcome in OUTCOMES:
            if outcome in CHECKED:
                path += [question_node(flow, q.name) for q in flow.questions[asked:]]
                path.append(VERIFY)
            path += outcome_path(flow, outcome)
            asked = 0
    return path


def highlighted(svg: bytes, path: Sequence[str]) -> bytes:
    """The graph's SVG with the class `lit` on each node of the path, and on
    each edge between two nodes that follow each other on it."""
    nodes = set(path)
    edges = {f"{a}->{b}" for a, b in itertools.pairwise(path) if a != b}
    root = etree.fromstring(svg, _SVG_PARSER)
    for group in root.iter(f"{{{_SVG}}}g"):
        kind = group.get("class")
        title = group.findtext(f"{{{_SVG}}}title") or ""
        if kind == "edge":  # `a:s->b:s` where an edge leaves and enters by a port
            title = "->".join(end.partition(":")[0] for end in title.split("->"))
        if (kind == "node" and title in nodes) or (kind == "edge" and title in edges):
            group.set("class", f"{kind} lit")
    return etree.tostring(root, encoding="utf-8")


def _step_node(dot: graphviz.Digraph, node_id: str, step: Step, flow: Flow) -> None:
    """One step: a plain box while the flow goes on; where the call ends up, a bold
    double-bordered shape (an octagon for hanging up)."""
    if isinstance(step, Say):
        dot.node(node_id, _label("Say", _quoted(step.text)), fillcolor="#ffffff")
    elif isinstance(step, SayDigits):
        dot.node(node_id, _label("Say digits", _quoted(step.digits)), fillcolor="#ffffff")
    elif isinstance(step, Pause):
        dot.node(node_id, _label(f"Pause {step.seconds} s"), fillcolor="#ffffff")
    elif isinstance(step, Play):
        dot.node(node_id, _label("Play", step.sound), fillcolor="#ffffff")
    elif isinstance(step, Hangup):
        _end(dot, node_id, "Hang up", shape="octagon", fill="#f4b6b0")
    elif isinstance(step, Ask):
        _end(dot, node_id, _label("Ask again", ", ".join(step.questions)), fill="#fff2cc")
    elif isinstance(step, Transfer):
        to = f"the verified {_record(flow)}'s phone" if step.to == VERIFIED else step.to
        _end(dot, node_id, _label("Transfer", f"to {to}"), fill="#b9e4b9")
    elif isinstance(step, FindMe):
        _end(dot, node_id, _label("Find Me", _findme_target(step, flow)), fill="#b9e4b9")
    elif isinstance(step, VirtualReceptionist):
        _end(dot, node_id, _label("Virtual Receptionist", f"menu {step.menu}"), fill="#cfe0f7")
    elif isinstance(step, Voicemail):
        _end(dot, node_id, _label("Voicemail", f"box {step.box}"), fill="#cfe0f7")
    elif isinstance(step, RunForm):
        params = [f"{key} = {value}" for key, value in step.params.items()]
        _end(dot, node_id, _label(f"Run SurVo {step.form}", *params, "then back to Glue"))
    else:  # a step kind added later: still drawn, never dropped
        dot.node(node_id, _label(type(step).__name__), fillcolor="#ffffff")


def _end(
    dot: graphviz.Digraph, node_id: str, label: str, shape: str = "box", fill: str = "#e8e8e8"
) -> None:
    style = "rounded,filled,bold" if shape == "box" else "filled,bold"
    dot.node(node_id, label, shape=shape, style=style, peripheries="2", fillcolor=fill)


def _question_details(question: Question) -> str:
    details: list[str] = [question.type]
    low, high = question.min_digits, question.max_digits
    if low is not None and high is not None:
        details.append(f"{low} digit" if low == high == 1 else f"{low}-{high} digits")
    elif low is not None:
        details.append(f"{low} or more digits")
    elif high is not None:
        details.append(f"up to {high} digits")
    if question.choices:
        details.append(" / ".join(question.choices))
    if question.secret:
        details.append("secret")
    return ", ".join(details)


def _verify_lines(flow: Flow) -> list[str]:
    verify = flow.verify
    if verify.by == "caller_id":
        claim = "claim by caller_id: the calling phone"
    else:
        claim = f"claim by {verify.by}: {verify.claim}"
    tries = f"{verify.tries} wrong PIN{'s' if verify.tries != 1 else ''} allowed"
    return [claim, f"PIN: {verify.pin}", tries]


def _record(flow: Flow) -> str:
    return "group" if flow.verify.by == "group" else "user"


def _findme_target(step: FindMe, flow: Flow) -> str:
    if step.to_verified:
        return f"the verified {_record(flow)}'s phones"
    if step.list_id is not None:
        return f"list {step.list_id}"
    return ", ".join(step.numbers)


def _quoted(text: str) -> str:
    return f"\u201c{text}\u201d"


def _label(*parts: str, width: int = _WRAP) -> str:
    """A multi-line DOT label from plain text: each part wrapped on its own lines.

    Backslashes are doubled so that admin text such as `\\N` or `\\l` is shown, not
    read as a DOT escape, and & is written &amp; so that `&lt;` is shown, not decoded;
    graphviz.quoting escapes the double quotes; nohtml keeps a label that looks like
    `<...>` from being taken as an HTML-like label.
    """
    lines: list[str] = []
    for part in parts:
        for paragraph in part.splitlines() or [""]:
            lines += textwrap.wrap(paragraph, width) or [""]
    escaped = (line.replace("\\", "\\\\").replace("&", "&amp;") for line in lines)
    return graphviz.nohtml("\\n".join(escaped))


def _bare_svg(data: bytes) -> bytes:
    """Graphviz's SVG as a lone `<svg>` element, for inlining in a page or saving."""
    root = etree.fromstring(data, _SVG_PARSER)
    return etree.tostring(root, encoding="utf-8", xml_declaration=False)
