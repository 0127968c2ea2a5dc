"""Checker problems placed in the text: the line the loader names, the span to underline."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.flows.loader import FlowFileError, Problem, load_flow_text
from app.flows.locate import Span, key_spans, line_span, locate, syntax_span
from tests.helpers.flows import BASE, CASES, write


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(FlowFileError) as info:
        load_flow_text(text, "flow")
    return info.value.problems


def marked(text: str, span: Span | object) -> str:
    line, column, end = (getattr(span, key) for key in ("line", "column", "end_column"))
    return text.splitlines()[line - 1][column:end]


def test_each_key_and_item_has_the_span_of_its_key_and_value() -> None:
    spans = key_spans(BASE)
    assert spans["verify.pin"] == Span(5, 38, 46)
    assert marked(BASE, spans["verify.pin"]) == "pin: pin"
    assert marked(BASE, spans["questions[1].max_digits"]) == "max_digits: 8"
    assert marked(BASE, spans["on.verified[1].transfer"]) == "transfer: verified"
    assert marked(BASE, spans["on.failed[1]"]) == "hangup"
    # A key whose value is a block below it: the key alone.
    assert marked(BASE, spans["on"]) == "on"
    assert spans["ifbyphone.say_survo"].line == 9


@pytest.mark.parametrize(("edits", "line", "field", "words"), CASES)
def test_every_rule_is_marked_on_the_line_the_checker_names(
    tmp_path: Path, edits: dict[int, str], line: int, field: str, words: str
) -> None:
    text = write(tmp_path, edits).read_text()
    problems = problems_of(text)
    located = locate(text, problems)
    assert [(p.line, p.field, p.message) for p in located] == [
        (p.line, p.field, p.message) for p in problems
    ]
    lines = text.splitlines()
    for spot in located:
        assert 0 <= spot.column <= spot.end_column <= len(lines[spot.line - 1])
        assert spot.end_column > spot.column or not lines[spot.line - 1].strip()


def test_a_wrong_name_is_marked_where_it_is_written() -> None:
    text = BASE.replace("pin: pin}", "pin: code}")
    (spot,) = locate(text, problems_of(text))
    assert (spot.line, spot.field, spot.hint) == (5, "verify.pin", "questions are: account, pin")
    assert marked(text, spot) == "pin: code"


def test_a_missing_key_is_marked_at_its_parent() -> None:
    text = BASE.replace("verify: {by: account, claim: account, pin: pin}", "verify: {by: account}")
    spots = locate(text, problems_of(text))
    claim = next(spot for spot in spots if spot.field == "verify.claim")
    assert claim.line == 5
    assert marked(text, claim).startswith("verify")


def test_a_yaml_syntax_error_is_marked_where_the_parser_stopped() -> None:
    text = BASE.replace("  failed: [", "  failed: - [")
    (problem,) = problems_of(text)
    assert problem.message.startswith("YAML syntax")
    (spot,) = locate(text, [problem])
    assert spot.line == problem.line == 8
    assert spot.field == ""
    assert syntax_span(text) == Span(spot.line, spot.column, spot.end_column)
    assert marked(text, spot) == "-"


def test_a_tab_is_marked_at_the_tab() -> None:
    text = BASE.replace("  failed:", "\tfailed:")
    (problem,) = problems_of(text)
    (spot,) = locate(text, [problem])
    assert (spot.line, spot.column) == (8, 0)
    assert marked(text, spot).startswith("\t")


def test_an_empty_text_is_marked_on_line_one() -> None:
    (spot,) = locate("", problems_of(""))
    assert (spot.line, spot.column, spot.end_column) == (1, 0, 0)
    assert spot.message == "the file is empty"


def test_a_problem_of_the_whole_file_is_its_line_without_indent() -> None:
    assert line_span("a: 1\n   b: 2  \n", 2) == Span(2, 3, 7)
    assert line_span("a: 1\n", 9) == Span(9, 0, 0)


def test_texts_that_are_not_yaml_or_too_deep_have_no_key_spans() -> None:
    assert key_spans("a: [") == {}
    assert key_spans("[" * 5000 + "]" * 5000) == {}
    assert syntax_span(BASE) is None
    deep = "a:\n" + "".join("  " * depth + f"k{depth}:\n" for depth in range(1, 100)) + "  x: 1\n"
    assert "a.k1.k2" in key_spans(deep)
    assert not any(path.count(".") > 70 for path in key_spans(deep))
