"""How a `flask` command fails, as the docs tell it, for every kind of mistake.

A mistake in the command line itself (a missing argument or option, an unknown
option or command, a bad value) is click's usage error: the usage line, a hint
to --help, a blank line and `Error: ...`, exit 2 (an option given without its
value: the `Error:` line alone). A command that runs and cannot
do what it was asked prints one line `Error: ...` and exits 1. Both on stderr,
nothing on stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner

from tests.helpers.settings import PROJECT_ROOT, TEST_SECRETS

SIMULATE = ["call", "simulate", "verify_caller", "--platform", "twiml", "--from", "3125550199"]

USAGE_ERRORS = [
    (["users", "add"], "users add", "Error: Missing argument 'ACCOUNT'."),
    (["users", "add", "1001"], "users add", "Error: Missing option '--name'."),
    (["users", "list", "--bogus"], "users list", "Error: No such option '--bogus'."),
    (["users", "frob"], "users", "Error: No such command 'frob'."),
    (
        ["directory", "export", "--format", "xml"],
        "directory export",
        "Error: Invalid value for '--format': 'xml' is not one of 'yaml', 'csv'.",
    ),
    (
        [*SIMULATE, "--digits", "1001#abc"],
        "call simulate",
        "Error: Invalid value for '--digits': only 0-9, * and #",
    ),
    (
        [*SIMULATE, "--timeout", "0"],
        "call simulate",
        "Error: Invalid value for '--timeout': must be above 0, at most 3600 seconds",
    ),
    (["forms", "graph"], "forms graph", "Error: Missing argument 'FLOW'."),
]


@pytest.mark.parametrize(("args", "command", "error"), USAGE_ERRORS)
def test_a_usage_error_shows_the_usage_and_exits_2(
    runner: FlaskCliRunner, args: list[str], command: str, error: str
) -> None:
    result = runner.invoke(args=args, prog_name="flask")

    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"Usage: flask {command} [OPTIONS]")
    assert lines[1:] == [f"Try 'flask {command} --help' for help.", "", error]


def test_an_option_without_its_value_is_a_usage_error_too(runner: FlaskCliRunner) -> None:
    # click leaves the usage line out of this one.
    result = runner.invoke(args=["demo", "info", "--url"], prog_name="flask")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "Error: Option '--url' requires an argument.\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["users", "set-pin", "9999", "--pin", "2468"], "Error: no user with account number 9999"),
        (["users", "add", "1001", "--name", "Ada", "--pin", "12"], "Error: PIN must be 4-8 digits"),
        (["call", "simulate", "nope", *SIMULATE[3:]], "Error: no flow 'nope' in "),
        (["forms", "graph", "nope"], "Error: no flow 'nope' in "),
    ],
)
def test_a_command_that_cannot_do_it_says_why_in_one_line_and_exits_1(
    runner: FlaskCliRunner, args: list[str], error: str
) -> None:
    result = runner.invoke(args=args, prog_name="flask")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(error)
    assert result.stderr.count("\n") == 1


def test_the_usage_error_a_shell_sees(tmp_path: Path) -> None:
    """The same through `flask` itself, run from the project folder."""
    env = {
        **os.environ,
        "GLUE_DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
        **{f"GLUE_{name}": value for name, value in TEST_SECRETS.items()},
    }
    flask = Path(sys.executable).with_name("flask")
    run = subprocess.run(
        [str(flask), "users", "set-pin"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines()[-4:] == [
        "Usage: flask users set-pin [OPTIONS] ACCOUNT",
        "Try 'flask users set-pin --help' for help.",
        "",
        "Error: Missing argument 'ACCOUNT'.",
    ]
