"""Every CLI command, fed generated arguments, option values, stdin and files.

Whatever the input, a command exits with 0, 1 or 2 and says why when it is not
0; it never ends in an uncaught exception, never prints a PIN it was given, and
leaves the database consistent. Commands are enumerated from `app.cli`: a new
one fails test_every_command_is_fuzzed until VALUES knows its parameters.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import requests
import yaml
from flask import Flask
from hypothesis import event, example, given
from hypothesis import strategies as st
from urllib3.util import Timeout

from app import create_app
from app.commands import simulator
from app.outbound import fake_provider
from tests.helpers.fuzz.consistency import assert_consistent, watched_log
from tests.helpers.fuzz.profiles import examples, generated_name
from tests.helpers.fuzz.strategies import (
    NUMBERS,
    SENT_PINS,
    encoded,
    encodings,
    hostile_text,
    values,
)
from tests.helpers.fuzz.world import World
from tests.helpers.settings import TEST_SECRETS

GLUE = "http://glue.test"  # where `call simulate` finds the app under test


# --- files -----------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    """A file written for the command to read: its name's suffix and its bytes."""

    suffix: str
    content: bytes


PIN_TEXT = st.one_of(st.sampled_from(SENT_PINS), values)  # only ever under a `pin` key
CELL = st.one_of(values, st.sampled_from(("1001", "500", "+13125550101", "true", "")))

HOSTILE_YAML = (
    "users: &a [*a]",  # a list that holds itself
    "users:\n  - &u {account: '1', name: x, pin: '2468', phones: *u}",
    "[" * 3000 + "]" * 3000,  # deeper than Python's recursion limit
    "{a: " * 3000 + "1" + "}" * 3000,
    "users: !!python/object/apply:os.system ['true']",
    "users:\n  - {account: 1001, account: 1002, name: x, pin: '2468'}",
    "users:\n\t- {account: '1'}",
    "users: [{? [a, b] : c}]",
    "users:\n  - !!binary aGVsbG8=",
    "groups:\n  - {number: '1', name: x, members: {a: b}}",
    "users: [{account: '1001', name: x, pin: 2468}]",
    "users: [{account: '1001', name: x, pin_hash: 'hmac$x$y'}]",
    "users: [{account: '1001', name: x, pin: '2468', password_hash: '$argon2id$v=19$x'}]",
    "\ufeffusers: []",
    "%YAML 1.1\n---\nusers: []\n...\n---\ngroups: []",
    "users: ~\ngroups: ~",
    "on: {verified: [say: 'x']}",
)
# Flow files: real keys with hostile values, and hostile YAML.
FLOW_KEYS = ("description", "questions", "verify", "on", "ifbyphone", "voipnow", "didml", "twiml")


@st.composite
def yaml_files(draw: st.DrawFn) -> File:
    kind = draw(st.sampled_from(("directory", "hostile", "noise")))
    if kind == "directory":
        user = st.fixed_dictionaries(
            {"account": CELL, "name": CELL},
            optional={
                "pin": PIN_TEXT,
                "phones": st.lists(CELL, max_size=3),
                "active": st.one_of(st.booleans(), CELL),
                "password": CELL,
                "members": st.lists(CELL, max_size=2),
                "nope": CELL,
            },
        )
        document: Any = draw(
            st.dictionaries(
                st.sampled_from(("users", "groups", "Users", "")),
                st.one_of(st.lists(user, max_size=3), CELL),
                max_size=2,
            )
        )
        text = yaml.safe_dump(document, allow_unicode=draw(st.booleans()))
    elif kind == "hostile":
        text = draw(st.sampled_from(HOSTILE_YAML))
    else:
        text = draw(values)
    return File(draw(st.sampled_from((".yaml", ".yml", ".YAML"))), encoded(text, draw(encodings)))


@st.composite
def csv_files(draw: st.DrawFn) -> File:
    columns = ("kind", "number", "name", "pin", "pin_hash", "phones", "members", "active")
    header = draw(
        st.one_of(
            st.just(["kind", "number", "name", "pin", "phones", "members", "active"]),
            st.lists(st.sampled_from((*columns, "password", "Kind ", "x", "")), max_size=8),
        )
    )
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = []
        for column in header:
            if column == "pin":
                row.append(draw(PIN_TEXT))
            elif column == "kind":
                row.append(draw(st.sampled_from(("user", "group", "USER", "admin", ""))))
            else:
                row.append(draw(CELL))
        if draw(st.booleans()):
            row = row[: draw(st.integers(0, len(row)))]
        rows.append(row)

    def line(cells: list[str]) -> str:
        quote = draw(st.booleans())
        return ",".join(f'"{c}"' if quote else c for c in cells)

    text = "\r\n".join(line(r) for r in [header, *rows])
    text += draw(st.sampled_from(("", "\n", '"unterminated', "\x00", "x" * 140000)))
    return File(draw(st.sampled_from((".csv", ".CSV", ".txt"))), encoded(text, draw(encodings)))


@st.composite
def flow_files(draw: st.DrawFn) -> File:
    source = Path(__file__).resolve().parents[2] / "survo_forms" / "verify_caller.yaml"
    kind = draw(st.sampled_from(("mutated", "mutated", "hostile", "noise")))
    if kind == "mutated":
        flow = yaml.safe_load(source.read_text())
        for key in draw(st.lists(st.sampled_from(FLOW_KEYS), max_size=3)):
            flow[key] = draw(
                st.one_of(
                    values,
                    st.lists(values, max_size=2),
                    st.dictionaries(values, values, max_size=2),
                    st.none(),
                    st.integers(),
                )
            )
        text = yaml.safe_dump(flow, allow_unicode=True)
    elif kind == "hostile":
        text = draw(st.sampled_from(HOSTILE_YAML))
    else:
        text = draw(values)
    return File(".yaml", encoded(text, draw(encodings)))


# --- values for each parameter ---------------------------------------------------

ACCOUNTS = st.one_of(st.sampled_from(("1001", "1002", "1004", "500", "9999")), hostile_text)
FLOATS = st.sampled_from(("0", "-1", "0.01", "2", "nan", "inf", "-inf", "1e309", "x", ""))
PATHS = st.sampled_from(("missing.yaml", ".", "missing/x.csv", "", "-", "\x00"))
FLOW_NAMES = st.one_of(
    st.sampled_from(("verify_caller", "group_line", "nope", "../app", "x.yaml")), hostile_text
)
VERSIONS = st.one_of(st.sampled_from(("1", "2", "0", "-1", "99999999999")), hostile_text)
# A file to write: named in the working folder (each example has a fresh one).
OUTPUTS = st.one_of(
    st.sampled_from(("out.yaml", "out.svg", "sub/out.csv", ".", "", "-")),
    hostile_text.filter(lambda s: "/" not in s and ".." not in s),
)


def _revision(downgrade: bool) -> st.SearchStrategy[str]:
    if downgrade:
        # Never one that resolves: a downgrade would drop the tables under the test.
        return hostile_text.map(lambda text: f"x{text}").filter(_not_alembic_bug)
    return st.one_of(
        st.sampled_from(("head", "heads", "0001", "+1", "-1", "base")),
        hostile_text.filter(_not_alembic_bug),
    )


def _not_alembic_bug(revision: str) -> bool:
    """Alembic fails its own assertion on a revision ending in @ (`@`, `x@`)."""
    return not revision.rpartition("@")[1] or bool(revision.rpartition("@")[2].strip())


Value = str | File | list[str | File]

# What a caller keys: claim, then PIN, as every flow asks them (a PIN the fuzz sent
# must only ever be an answer to the PIN question: it may be stored nowhere). No
# silent claim here: a question not answered is asked again, and every answer after
# it would shift by one.
CALLER_KEYS = st.lists(
    st.tuples(
        st.sampled_from(("1001", "500", "*")), st.sampled_from((*SENT_PINS, "1234", "", "#"))
    ),
    max_size=4,
).map(lambda pairs: [key for pair in pairs for key in pair])

# Per command, per parameter: what to try. Every parameter of every command is here.
VALUES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "db upgrade": {"revision": _revision(downgrade=False)},
    "db downgrade": {"revision": _revision(downgrade=True)},
    "users add": {
        "account": ACCOUNTS,
        "name": values,
        "pin": PIN_TEXT,
        "phones": st.lists(st.one_of(st.sampled_from(NUMBERS), values), max_size=3),
    },
    "users set-pin": {"account": ACCOUNTS, "pin": PIN_TEXT},
    "users set-password": {
        "account": ACCOUNTS,
        "password": st.one_of(st.sampled_from(("fuzz-pass-2", "short", "x" * 1025)), values),
    },
    "users make-admin": {"account": ACCOUNTS},
    "users revoke-admin": {"account": ACCOUNTS},
    "users disable": {"account": ACCOUNTS},
    "users enable": {"account": ACCOUNTS},
    "users unlock": {"account": ACCOUNTS},
    "users list": {},
    "groups add": {
        "number": ACCOUNTS,
        "name": values,
        "pin": PIN_TEXT,
        "phones": st.lists(st.one_of(st.sampled_from(NUMBERS), values), max_size=3),
    },
    "groups add-member": {"number": ACCOUNTS, "account": ACCOUNTS},
    "groups unlock": {"number": ACCOUNTS},
    "groups list": {},
    "directory import": {"file": st.one_of(yaml_files(), csv_files(), PATHS)},
    "directory export": {"fmt": st.sampled_from(("yaml", "csv", "xml", "")), "output": OUTPUTS},
    "demo load": {},
    "demo info": {
        "url": st.one_of(
            st.sampled_from(("http://127.0.0.1:5000", "http://0.0.0.0:8000/", "")), hostile_text
        )
    },
    "forms check": {"files": st.lists(st.one_of(flow_files(), PATHS), max_size=3)},
    "forms list": {},
    "forms publish": {
        "files": st.lists(st.one_of(flow_files(), PATHS), max_size=3),
        "note": st.one_of(st.just(""), hostile_text),
    },
    "forms history": {"flow": FLOW_NAMES},
    "forms diff": {
        "flow": FLOW_NAMES,
        "a": st.one_of(VERSIONS, flow_files(), PATHS),
        "b": st.one_of(VERSIONS, PATHS),
    },
    "forms rollback": {
        "flow": FLOW_NAMES,
        "version": st.one_of(VERSIONS, hostile_text),
        "note": st.one_of(st.just(""), hostile_text),
    },
    # Always a folder of the example's own: the default is the flows folder.
    "forms export": {"directory": st.one_of(st.sampled_from(("out", "sub/out", ".")), OUTPUTS)},
    "forms graph": {
        "flow": st.one_of(
            st.sampled_from(("verify_caller", "group_line", "nope", "../app", "x.yaml")),
            flow_files(),
            hostile_text,
        ),
        "fmt": st.sampled_from(("svg", "png", "pdf", "")),
        "output": OUTPUTS,
    },
    # Mostly a call that runs (through the app under test), sometimes a bad option.
    "call simulate": {
        "flow": st.one_of(
            st.sampled_from(("verify_caller", "group_line") * 4 + ("nope",)), hostile_text
        ),
        "platform": st.sampled_from(("ifbyphone", "voipnow", "didml", "twiml") * 3 + ("sip", "")),
        "number": st.one_of(st.sampled_from(("3125550199", "+13125550101", "")), values),
        "url": st.sampled_from(
            (GLUE,) * 6 + (GLUE + "/", "http://elsewhere.test", "ftp://glue.test", "glue", "")
        ),
        "digits": st.one_of(
            CALLER_KEYS.map(lambda keys: "#".join(keys) + "#"),
            st.lists(st.sampled_from(("1001", "500", "", "*")), max_size=8).map("#".join),
            values,
        ),
        "call_id": st.one_of(st.sampled_from(("sim-1", "call-1")), values),
        "timeout": st.one_of(st.just("2"), st.just("2"), FLOATS),
    },
    "call fake-provider": {
        "port": st.sampled_from(("5099", "0", "-1", "65536", "70000", "x", "")),
        "answer_after": FLOATS.filter(lambda f: f != "nan"),
    },
    "api-tokens create": {"name": st.one_of(st.sampled_from(("fuzz", "other", "x" * 65)), values)},
    "api-tokens list": {},
    "api-tokens revoke": {"name": st.one_of(st.sampled_from(("fuzz", "other")), values)},
    "api-tokens webhook": {
        "name": st.one_of(st.sampled_from(("fuzz", "other")), values),
        "url": st.one_of(
            st.sampled_from(
                (
                    "https://crm.test/hooks",
                    "http://127.0.0.1:9/x",
                    "ftp://crm.test/",
                    "https://u:p@x.test/",
                    "",
                )
            ),
            values,
        ),
        "remove": st.booleans(),
    },
    "api-tokens webhook-secret": {
        "name": st.one_of(st.sampled_from(("fuzz", "other")), values),
        "rotate": st.booleans(),
    },
    "retention purge": {
        "days": st.sampled_from(("1", "0", "-1", "90", "99999999999", "x")),
        "dry_run": st.booleans(),
        "batch_size": st.sampled_from(("1", "0", "5000", "5001", "x")),
    },
}


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} ")
        else:
            yield path, command


def test_every_command_is_fuzzed(app: Flask) -> None:
    """A new command, or a new parameter, needs its values in VALUES."""
    found = {path: {p.name for p in command.params} for path, command in commands(app.cli)}
    assert found.keys() - VALUES.keys() == set(), "commands nobody fuzzes: add them to VALUES"
    assert VALUES.keys() - found.keys() == set(), "VALUES names commands that are gone"
    for path, names in found.items():
        assert names == VALUES[path].keys(), f"{path}: parameters are {sorted(names)}"


# --- a generated invocation ------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    args: tuple[Value, ...]  # after the command's path; File values are written first
    stdin: str | None = None


def argv(text: str) -> str:
    """As a shell can pass it: no NUL, and invalid UTF-8 arrives as surrogateescape."""
    return re.sub("[\ud800-\udc7f\udd00-\udfff]", "\udcff", text.replace("\x00", ""))


@cache
def _commands() -> dict[str, click.Command]:
    """The commands of an app built for the purpose (the strategies run before any test's)."""
    folder = tempfile.mkdtemp()
    app = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{folder}/unused.db", **TEST_SECRETS},
        instance_path=folder,
    )
    return dict(commands(app.cli))


@st.composite
def invocations(draw: st.DrawFn, path: str) -> Invocation:
    args: list[Value] = []
    for param in _commands()[path].params:
        strategy = VALUES[path][param.name or ""]
        if isinstance(param, click.Argument):
            if draw(st.integers(0, 9)) == 0:
                continue  # missing: a usage error
            value = draw(strategy)
            args += value if isinstance(value, list) else [value]
            continue
        assert isinstance(param, click.Option)
        if draw(st.integers(0, 9)) >= (9 if param.required else 5):
            continue  # left out: a usage error if it is required
        flag = param.opts[0]
        if param.is_flag:
            if draw(strategy):
                args.append(flag)
        elif param.multiple:
            for value in draw(strategy):
                args += [flag, value]
        else:
            args += [flag, draw(strategy)]
    junk = st.sampled_from(("--nope", "--", "-h", "x", "--help"))
    extra = [draw(junk)] if draw(st.integers(0, 5)) == 0 else []
    typed_pins = (
        # What `call simulate` reads at keys>: answers to the flow's questions.
        CALLER_KEYS.map(lambda keys: "".join(f"{key}\n" for key in keys))
        if path == "call simulate"
        # A PIN prompt's answer, and its confirmation.
        else st.sampled_from(SENT_PINS).map(lambda pin: f"{pin}\n{pin}\n")
    )
    stdin = draw(
        st.one_of(
            st.none(),
            typed_pins,
            st.sampled_from(("fuzz-pass-3\nfuzz-pass-3\n", "a\nb\n", "\n\n", "1001#2468#\n")),
            values.map(lambda text: re.sub("[\ud800-\udfff]", "", text)),
        )
    )
    # Shuffled sometimes, unless a PIN is among them: it must stay in the PIN's place.
    holds_pin = any(arg in SENT_PINS for arg in args if isinstance(arg, str))
    shuffle = not holds_pin and draw(st.integers(0, 4)) == 0
    order = draw(st.permutations(args)) if shuffle else args
    return Invocation(
        tuple(argv(a) if isinstance(a, str) else a for a in [*order, *extra]),  # type: ignore[misc]
        stdin,
    )


# --- running it -------------------------------------------------------------------


class ToTheApp(requests.adapters.BaseAdapter):
    """`call simulate`'s HTTP, served by the app under test at glue.test; nothing
    else is reachable (no network in tests)."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app

    def send(  # type: ignore[override]  # the keywords requests passes, taken as one
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        timeout = kwargs.get("timeout")
        if not isinstance(timeout, tuple):
            Timeout(connect=timeout, read=timeout)  # refuses what requests' own adapter does
        if isinstance(timeout, float) and not math.isfinite(timeout):
            raise ValueError("Invalid timeout")  # as a socket does
        url = urlsplit(request.url or "")
        if url.hostname != "glue.test":
            raise requests.ConnectionError(f"no network in tests: {url.netloc}", request=request)
        answer = self.app.test_client().open(
            url.path,
            base_url=f"{url.scheme}://{url.netloc}",
            method=request.method,
            query_string=url.query,
            headers=dict(request.headers),
            data=request.body,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.status.partition(" ")[2]
        response.headers = requests.structures.CaseInsensitiveDict(answer.headers)
        response._content = answer.get_data()
        response.url, response.request = request.url or "", request
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def hermetic(cli_world: World, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """No network, no server: simulate talks to the app, fake-provider only records."""
    app = cli_world.app

    class Session(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.mount("http://", ToTheApp(app))
            self.mount("https://", ToTheApp(app))

    monkeypatch.setattr(simulator.requests, "Session", Session)
    served: list[tuple[Any, ...]] = []
    monkeypatch.setattr(fake_provider, "run_simple", lambda *args, **kw: served.append(args))
    return served


_counter = itertools.count()


def _materialize(value: Value, folder: Path) -> str:
    if isinstance(value, File):
        path = folder / f"f{next(_counter)}{value.suffix}"
        path.write_bytes(value.content)
        return str(path)
    assert isinstance(value, str)
    return value


def run(world: World, path: str, invocation: Invocation, folder: Path) -> None:
    folder.mkdir(parents=True)
    args = path.split() + [_materialize(v, folder) for v in invocation.args]  # type: ignore[arg-type]
    runner = world.app.test_cli_runner()
    with watched_log(), contextlib.chdir(folder):
        result = runner.invoke(args=args, input=invocation.stdin, catch_exceptions=True)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"flask {args!r} raised {result.exception!r}\n{output}") from (
            result.exception
        )
    event(f"exit {result.exit_code}")  # in --hypothesis-show-statistics
    assert result.exit_code in (0, 1, 2), f"exit {result.exit_code}: {output}"
    assert "Traceback" not in output
    if result.exit_code != 0:
        assert output.strip(), f"flask {args!r} failed without saying why"
    # Not simulate: it echoes the keys pressed, as a terminal would; nor a usage
    # error (2): Click quotes the arguments it could not place, as they were typed.
    if path != "call simulate" and result.exit_code != 2:
        leaked = [pin for pin in SENT_PINS if pin in output]
        assert not leaked, f"a PIN was printed: {output[:500]}"
    assert_consistent(world.engine, world.known_problems)


# Inputs that once broke a command, kept as examples that always run.
REGRESSIONS: dict[str, list[Invocation]] = {
    # An unknown revision: alembic's CommandError, uncaught. An empty one: its assertion.
    "db upgrade": [Invocation(("<",)), Invocation(("",))],
    "db downgrade": [Invocation(("x<",))],
    # A file name that is not UTF-8 (as a shell passes \xff): written, then not printable.
    "directory export": [Invocation(("--output", "\udcff"))],
    # Ports and days past what a socket or a date can take: OverflowError.
    "call fake-provider": [Invocation(("--port", "-1")), Invocation(("--port", "70000"))],
    "retention purge": [Invocation(("--older-than", "99999999999"))],
    # A timeout requests refuses (0, negative, NaN): ValueError, uncaught.
    "call simulate": [
        Invocation(("verify_caller", "--platform", "twiml", "--from", "1", "--timeout", t))
        for t in ("0", "nan")
    ],
    # A header cell past the csv module's field limit: csv.Error, uncaught.
    "directory import": [
        Invocation((File(".csv", b"kind,number,name" + b"x" * 140000),)),
        Invocation((File(".yaml", b"[" * 3000 + b"]" * 3000),)),  # RecursionError
    ],
    # An alias inside its own anchor, and deep nesting: RecursionError. A null key
    # (`?` alone): TypeError writing the problem's field.
    "forms check": [
        Invocation((File(".yaml", b"?"),)),
        Invocation((File(".yaml", b"users: &a [*a]"),)),
        Invocation((File(".yaml", b"{a: " * 3000 + b"1" + b"}" * 3000),)),
    ],
}


def _fuzz_command(path: str) -> Any:
    # `call simulate` runs whole calls, and few commands are quick: fewer examples.
    scale = {"call simulate": 0.6, "demo load": 0.2}.get(path, 0.5)

    @examples(scale)
    @given(invocation=invocations(path))
    def test(
        cli_world: World, hermetic: list[tuple[Any, ...]], tmp_path: Path, invocation: Invocation
    ) -> None:
        hermetic.clear()
        run(cli_world, path, invocation, tmp_path / f"run{next(_counter)}")
        for _host, port, *_ in hermetic:  # `call fake-provider` would have served there
            assert 1 <= int(port) <= 65535, f"served on port {port}"

    for regression in REGRESSIONS.get(path, []):
        test = example(invocation=regression)(test)
    test.__name__ = generated_name(path)
    test.__doc__ = f"Generated input to `flask {path}`."
    return test


for _path in VALUES:
    globals()[generated_name(_path)] = _fuzz_command(_path)
