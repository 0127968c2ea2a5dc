"""Read flow files: YAML -> FlowSchema -> Flow, with every problem tied to a line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from app.directory.pins import PinPolicy
from app.flows.model import Flow
from app.flows.schema import FlowSchema, default_hint
from app.neutral.fields import DataPath

# A flow's name is its file stem and appears in platform URLs.
FLOW_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# /didml/status and /twiml/status receive status callbacks, not a flow.
RESERVED_FLOW_NAMES = frozenset({"status"})
# The most digits a PIN question without max_digits is taken to accept when it
# is held against the PIN policy: DIDforSale's <Gather> stops at 20 unless told
# otherwise (Twilio's has no limit), so a longer PIN could not be keyed in there.
UNSET_MAX_DIGITS = 20


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    field: str  # dotted path, e.g. on.verified[1].transfer; "" for the whole file
    message: str
    hint: str = ""  # how to fix it, e.g. "questions are: account, pin"

    def __str__(self) -> str:
        """One line, so a log record stays one line: file:line: field: message (hint: ...)."""
        text = f"{self.file}:{self.line}: " + (f"{self.field}: " if self.field else "")
        return text + self.message + (f" (hint: {self.hint})" if self.hint else "")


class FlowFileError(Exception):
    """One or more flow files are invalid; `problems` lists every one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__("\n  ".join([f"{count} in flow files:", *map(str, problems)]))


class _FlowYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: `on:` and `no` stay strings (YAML 1.1 reads
    them as booleans), and numbers like +4420... or 0200 stay text, not int or octal."""


_FlowYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":bool", ":int"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FlowYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_FlowYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:0|-?[1-9][0-9]*)$"), list("-0123456789")
)


def load_flow(path: Path, pins: PinPolicy | None = None) -> Flow:
    """Load and validate one flow file; raises FlowFileError listing all its problems.

    With `pins`, a PIN question that cannot take every PIN length the policy
    allows is one of them (see `pin_problems`).
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        hint = "check the file exists and is saved as UTF-8 text"
        raise FlowFileError([Problem(file, 1, "", f"cannot read: {exc}", hint)]) from None
    return load_flow_text(text, path.stem, file, pins)


def load_flow_text(
    text: str, name: str, file: str | None = None, pins: PinPolicy | None = None
) -> Flow:
    """Load and validate a flow's YAML source as the file `name`.yaml would be
    (the same checks as `load_flow`); problems name `file` (default: that file name)."""
    try:
        return _load_text(text, name, file or f"{name}.yaml", pins)
    except RecursionError:
        message = "YAML nested too deeply, or an alias (*name) inside its own anchor (&name)"
        hint = "write the repeated part out in full"
        raise FlowFileError([Problem(file or f"{name}.yaml", 1, "", message, hint)]) from None


def _load_text(text: str, name: str, file: str, pins: PinPolicy | None) -> Flow:
    try:
        node, data = _parse(text)
    except yaml.YAMLError as exc:
        raise FlowFileError([_yaml_problem(file, exc)]) from None
    if node is None:
        hint = "start from a copy of survo_forms/verify_caller.yaml, the commented example"
        raise FlowFileError([Problem(file, 1, "", "the file is empty", hint)])

    lines: dict[DataPath, int] = {(): node.start_mark.line + 1}
    problems = [
        Problem(
            file,
            line,
            _dotted(at),
            "duplicate key: only the last one counts",
            "delete one of them, or merge them into one",
        )
        for at, line in _map_lines(node, (), lines)
    ]
    if not FLOW_NAME.fullmatch(name):
        suggestion = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:64] or "my_flow"
        problems.append(
            Problem(
                file,
                1,
                "",
                "file name must be letters, digits, _ or - .yaml",
                f"rename it, e.g. {suggestion}.yaml",
            )
        )
    elif name in RESERVED_FLOW_NAMES:
        problems.append(
            Problem(
                file,
                1,
                "",
                f"{name!r} is a route of Glue's: rename the file",
                f"e.g. {name}_line.yaml",
            )
        )
    try:
        flow: Flow = FlowSchema().load(data)
        if pins is not None:
            problems += pin_problems(file, lines, flow, pins)
    except ValidationError as exc:
        problems += [
            Problem(
                file,
                _line(lines, at),
                _dotted(at),
                str(message),
                getattr(message, "hint", "") or default_hint(at, str(message)),
            )
            for at, message in _flatten(exc.messages, ())
        ]
    if problems:
        raise FlowFileError(sorted(problems))
    return replace(flow, name=name, source=file)


def load_dir(
    directory: Path, pins: PinPolicy | None = None
) -> tuple[dict[str, Flow], list[Problem]]:
    """Every *.yaml flow in directory, by name, and the problems of those that failed."""
    if not directory.is_dir():
        raise NotADirectoryError(f"flow directory not found: {directory}")
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            flows[path.stem] = load_flow(path, pins)
        except FlowFileError as exc:
            problems += exc.problems
    return flows, problems


def pin_lengths(flow: Flow) -> tuple[int, int]:
    """The fewest and most digits the flow's PIN question takes.

    Every dialect asks for at most `max_digits` (a `<Gather>`'s numDigits) and
    the engine refuses an answer outside min_digits..max_digits, whichever
    platform collected it.
    """
    question = flow.question(flow.verify.pin)
    assert question is not None  # the schema checks that verify.pin names a question
    return question.min_digits or 1, question.max_digits or UNSET_MAX_DIGITS


def flow_pin_lengths(directory: Path) -> dict[str, tuple[int, int]]:
    """The PIN lengths each flow in `directory` takes; flows that do not load
    are left out, and a missing directory has none."""
    try:
        flows, _problems = load_dir(directory)
    except NotADirectoryError:
        return {}
    return {name: pin_lengths(flow) for name, flow in flows.items()}


def pin_problems(
    file: str, lines: dict[DataPath, int], flow: Flow, pins: PinPolicy
) -> list[Problem]:
    """The PIN lengths the policy allows that the flow's PIN question cannot take.

    That direction matters: such a PIN can be given to a user, who could then
    never key it in on this flow. The other (the question takes lengths no PIN
    has) only means a caller keying too many digits hears a wrong PIN.
    """
    index = next(i for i, q in enumerate(flow.questions) if q.name == flow.verify.pin)
    question = flow.questions[index]
    low, high = pin_lengths(flow)
    problems = []
    if high < pins.max_length:
        at: DataPath = ("questions", index, "max_digits")
        takes = f"takes at most {high} digits" + (
            "" if question.max_digits else " (no max_digits: DIDforSale's <Gather> default)"
        )
        problems.append(
            Problem(
                file,
                _line(lines, at),
                _dotted(at),
                f"PIN question {question.name} {takes}, but PINs may have "
                f"{pins.max_length} (GLUE_PIN_MAX_LENGTH): longer PINs could never be keyed in",
                f"make max_digits {pins.max_length}, or set GLUE_PIN_MAX_LENGTH={high}",
            )
        )
    if low > pins.min_length:
        at = ("questions", index, "min_digits")
        problems.append(
            Problem(
                file,
                _line(lines, at),
                _dotted(at),
                f"PIN question {question.name} takes at least {low} digits, but PINs may have "
                f"{pins.min_length} (GLUE_PIN_MIN_LENGTH): shorter PINs could never be keyed in",
                f"make min_digits {pins.min_length}, or set GLUE_PIN_MIN_LENGTH={low}",
            )
        )
    return problems


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """Compose once, then construct: the node tree gives lines, the data goes to the schema."""
    loader = _FlowYamlLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _yaml_problem(file: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    context, started = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and started and started is not mark:
        # e.g. an unclosed [ is noticed at the end of the file: say where it began.
        context = f"{context} (from line {started.line + 1})"
    parts = [context, getattr(exc, "problem", None)]
    message = ": ".join(str(part) for part in parts if part) or str(exc)
    hint = 'indent with spaces, not tabs; put text with a colon, # or braces in "double quotes"'
    return Problem(file, mark.line + 1 if mark else 1, "", f"YAML syntax: {message}", hint)


def _map_lines(
    node: yaml.Node, at: DataPath, lines: dict[DataPath, int]
) -> Iterator[tuple[DataPath, int]]:
    """Fill lines with path -> 1-based line of each key and list item; yield duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            child = (*at, key.value)
            if key.value in seen:
                yield child, key.start_mark.line + 1
            seen.add(key.value)
            lines[child] = key.start_mark.line + 1
            yield from _map_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*at, index)] = item.start_mark.line + 1
            yield from _map_lines(item, (*at, index), lines)


def _line(lines: dict[DataPath, int], at: DataPath) -> int:
    # A missing key has no node: use the nearest enclosing one.
    while at not in lines:
        at = at[:-1]
    return lines[at]


def _flatten(messages: Any, at: DataPath) -> Iterator[tuple[DataPath, Any]]:
    """marshmallow's nested messages -> (path, message); `_schema` belongs to its parent.
    A message is kept as given: a schema `Message` carries its hint."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten(value, at if key == "_schema" else (*at, key))
    elif isinstance(messages, list):
        for message in messages:
            yield from _flatten(message, at)
    else:
        yield at, messages


def _dotted(at: DataPath) -> str:
    text = ""
    for key in at:
        # str(): a key may be any YAML scalar, `? ` alone makes it null
        text += f"[{key}]" if isinstance(key, int) else f".{key}" if text else str(key)
    return text
