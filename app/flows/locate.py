"""Where in a flow's YAML text each checker problem is: line and columns, for an editor to mark.

The loader already ties every problem to a line (the nearest key or list item
its field path names). An editor underlines a range, so this reads the text's
node tree again (`yaml.compose`: positions only, nothing is constructed) and
gives each problem the span of the key its field names, or of the token a YAML
syntax error stopped at. Pure: text and problems in, spans out.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from app.flows.loader import Problem


@dataclass(frozen=True)
class Span:
    line: int  # 1-based, as problems count lines
    column: int  # 0-based, the first character
    end_column: int  # 0-based, one past the last character, on the same line


@dataclass(frozen=True)
class Located:
    """A problem with the span to mark; `field` "" is about the whole text."""

    line: int
    column: int
    end_column: int
    field: str
    message: str
    hint: str


def locate(text: str, problems: list[Problem]) -> list[Located]:
    """Each problem with the span to mark: the key or list item its field names
    (or the nearest enclosing one there is), the place a YAML syntax error was
    found, else its line from its first to its last character."""
    spans = key_spans(text)
    syntax = syntax_span(text)
    located = []
    for problem in problems:
        span = _nearest(spans, problem.field) if problem.field else None
        if span is None and syntax is not None and problem.message.startswith("YAML syntax"):
            span = syntax
        if span is None:
            span = line_span(text, problem.line)
        located.append(
            Located(
                span.line,
                span.column,
                span.end_column,
                problem.field,
                problem.message,
                problem.hint,
            )
        )
    return located


def key_spans(text: str) -> dict[str, Span]:
    """Each mapping key's and list item's field path (as problems name them:
    `on.verified[1].transfer`) -> the span of the key (with its value when on
    the same line), or of the item (its first line).
    A text that is not YAML, or nests too deeply, has none."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return {}
    spans: dict[str, Span] = {}
    if node is not None:
        _walk(text.splitlines(), node, "", spans, depth=0)
    return spans


def syntax_span(text: str) -> Span | None:
    """Where the YAML parser stopped on text that is not YAML; None if it is."""
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is None:
            return None
        lines = text.splitlines()
        line = lines[mark.line] if mark.line < len(lines) else ""
        end = _token_end(line, mark.column)
        return Span(mark.line + 1, min(mark.column, len(line)), end)
    except (yaml.YAMLError, RecursionError):
        return None
    return None


def line_span(text: str, line: int) -> Span:
    """The line's text from its first to its last character that is not a space."""
    lines = text.splitlines()
    body = lines[line - 1] if 0 < line <= len(lines) else ""
    start = len(body) - len(body.lstrip())
    return Span(max(1, line), start, max(start, len(body.rstrip())))


# Deeper than any flow: a text built to be deep is not walked to the end.
_MAX_DEPTH = 64


def _walk(lines: list[str], node: yaml.Node, at: str, spans: dict[str, Span], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            child = f"{at}.{key.value}" if at else str(key.value)
            # The key with its value when that is on the key's line: `pin: code`.
            # A duplicate key: the last one, as the loader keeps it.
            spans[child] = _pair_span(lines, key, value)
            _walk(lines, value, child, spans, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{at}[{index}]"
            spans[child] = _node_span(lines, item)
            _walk(lines, item, child, spans, depth + 1)


def _pair_span(lines: list[str], key: yaml.Node, value: yaml.Node) -> Span:
    span = _node_span(lines, key)
    same_line = value.end_mark.line == key.start_mark.line
    if isinstance(value, yaml.ScalarNode) and same_line and value.end_mark.column > span.column:
        return Span(span.line, span.column, value.end_mark.column)
    return span


def _node_span(lines: list[str], node: yaml.Node) -> Span:
    """The node from where it starts to where it ends, or to the end of its first line."""
    start, end = node.start_mark, node.end_mark
    body = lines[start.line] if start.line < len(lines) else ""
    if end.line == start.line and end.column > start.column:
        return Span(start.line + 1, start.column, end.column)
    return Span(start.line + 1, start.column, max(start.column, len(body.rstrip())))


def _nearest(spans: dict[str, Span], field: str) -> Span | None:
    """The span of field, else of the nearest enclosing path that has one (a
    missing key is reported at its parent)."""
    while field:
        if field in spans:
            return spans[field]
        cut = max(field.rfind("."), field.rfind("["))
        field = field[:cut] if cut > 0 else ""
    return None


def _token_end(line: str, column: int) -> int:
    """One past the end of the word at column, or one character on from it."""
    end = column
    while end < len(line) and not line[end].isspace():
        end += 1
    return max(end, min(column + 1, len(line))) if column < len(line) else column
