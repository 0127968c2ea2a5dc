"""`flask forms check` (every problem with a fix hint) and `flask forms list`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from app import create_app
from app.flows.loader import FlowFileError, Problem, load_flow
from tests.helpers.flows import CASES, shipped_copy
from tests.helpers.flows import write as write_flow
from tests.helpers.settings import PROJECT_ROOT, TEST_SECRETS


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    return shipped_copy(tmp_path / "flows")


@pytest.fixture
def cli_app(tmp_path: Path, flows_dir: Path) -> Iterator[Flask]:
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
        "FLOWS_DIR": str(flows_dir),
        "FLOWS_RELOAD_SECONDS": 0,
        **TEST_SECRETS,
    }
    app = create_app(config, instance_path=str(tmp_path / "instance"))
    yield app
    app.extensions["glue.engine"].dispose()


@pytest.fixture
def cli(cli_app: Flask) -> FlaskCliRunner:
    return cli_app.test_cli_runner()


def break_flow(path: Path) -> None:
    """Line 8 of the copy: `tries: 0` is out of range."""
    path.write_text(
        "description: Broken.\n"
        "questions:\n"
        "  - {name: account, type: digits}\n"
        "  - {name: pin, type: digits}\n"
        "verify:\n"
        "  by: account\n"
        "  claim: account\n"
        "  tries: 0\n"
        "  pin: pin\n"
        "on:\n"
        "  verified: [{transfer: verified}]\n"
        "  failed: [hangup]\n"
    )


def test_check_good_flows(cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["forms", "check"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 flows OK"


def test_check_reports_file_line_field(cli: FlaskCliRunner, flows_dir: Path) -> None:
    broken = flows_dir / "broken.yaml"
    break_flow(broken)

    result = cli.invoke(args=["forms", "check"])

    assert result.exit_code == 1
    assert f"{broken}:8: verify.tries: Must be greater than or equal to 1" in result.output
    assert "1 problem(s) in 1 file(s); 2 flow(s) OK" in result.output


def test_check_named_files_only(cli: FlaskCliRunner, flows_dir: Path, tmp_path: Path) -> None:
    break_flow(flows_dir / "broken.yaml")
    elsewhere = tmp_path / "draft.yaml"
    shutil.copy(flows_dir / "group_line.yaml", elsewhere)

    result = cli.invoke(args=["forms", "check", str(elsewhere)])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 flows OK"


def test_check_missing_file_is_a_usage_error(cli: FlaskCliRunner, tmp_path: Path) -> None:
    result = cli.invoke(args=["forms", "check", str(tmp_path / "nope.yaml")])

    assert result.exit_code == 2


def test_check_from_a_shell_prints_each_problem_once(flows_dir: Path, tmp_path: Path) -> None:
    """`flask forms check` as typed: the app it runs in loads the broken flow too."""
    broken = flows_dir / "verify_caller.yaml"
    break_flow(broken)
    env = {
        **os.environ,
        "GLUE_FLOWS_DIR": str(flows_dir),
        "GLUE_DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
        **{f"GLUE_{name}": value for name, value in TEST_SECRETS.items()},
    }
    run = subprocess.run(
        [sys.executable, "-m", "flask", "forms", "check"],
        cwd=PROJECT_ROOT,  # where .flaskenv names the app, as for a person
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 1, run.stderr
    with pytest.raises(FlowFileError) as info:
        load_flow(broken)
    (problem,) = info.value.problems
    everything = run.stdout + run.stderr
    assert everything.count(f"{broken}:8: ") == 1
    assert run.stdout.splitlines()[0] == str(problem)
    # Start-up names the file once, and leaves the problem to the command.
    assert f"flow file {broken} not loaded (1 problem)" in run.stderr


def test_list_shows_names_descriptions_questions(cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["forms", "list"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "group_line: Verify a group by group number and PIN, then ring the group's phones.",
        "  questions: group, pin",
        "verify_caller: Verify a caller by account number and PIN.",
        "  questions: account, pin",
    ]


# --- fix hints ----------------------------------------------------------------

# A flow with one line per thing the cases below break (line numbers matter).
HINTED = """\
questions:
  - {name: account, type: digits}
  - {name: pin, type: digits}
verify: {by: account, claim: account, pin: pin}
on:
  verified: [{say: "Thank you, {name}."}, {transfer: verified}]
  retry: [{ask: [account, pin]}]
  failed: [{say: "Sorry."}, hangup]
ifbyphone: {survo: 4101, say_survo: 4102}
voipnow: {ask_context: a, transfer_context: t}
"""

STEP_KINDS = "say, say_digits, pause, play, ask, survo, transfer, findme, vr, voicemail, hangup"

# (line replaced, its new text, problem line, field, message, hint)
HINT_CASES = [
    (
        8,
        "  failed: [{dial: 5}]",
        8,
        "on.failed[0].dial",
        "unknown step",
        f"steps are: {STEP_KINDS}",
    ),
    (
        8,
        "  failed: [{sya: Hi}, hangup]",
        8,
        "on.failed[0].sya",
        "unknown step",
        f"did you mean say? steps are: {STEP_KINDS}",
    ),
    (
        7,
        "  retry: [{ask: [account, code]}]",
        7,
        "on.retry[0].ask[1]",
        "no question named code",
        "questions are: account, pin",
    ),
    (
        4,
        "verify: {by: account, claim: acount, pin: pin}",
        4,
        "verify.claim",
        "no question named acount",
        "did you mean account? questions are: account, pin",
    ),
    (
        4,
        "verify: {by: account, claim: account, pin: secret}",
        4,
        "verify.pin",
        "no question named secret",
        "questions are: account, pin",
    ),
    (
        6,
        '  verified: [{transfer: verified}, {say: "Bye."}]',
        6,
        "on.verified[1]",
        "unreachable: step after transfer",
        "move it before the transfer, or delete it",
    ),
    (
        8,
        '  failed: [{say: "Sorry."}]',
        8,
        "on.failed[0]",
        "must end with hangup, transfer, findme, vr, voicemail, ask or survo",
        "add - hangup (or another step that hands the call on) after it",
    ),
    (
        9,
        "ifbyphone: {survo: 4101}",
        9,
        "ifbyphone.say_survo",
        "required: the flow says text in verified, failed, locked (default), error (default)",
        "add ifbyphone.say_survo: <SurVo id>",
    ),
    (
        10,
        "voipnow: {ask_context: a}",
        10,
        "voipnow.transfer_context",
        "required: the flow has transfer in verified",
        "add voipnow.transfer_context: <IVR context name>",
    ),
    (
        6,
        '  verified: [{say: "Hi {acount}."}, {transfer: verified}]',
        6,
        "on.verified[0].say",
        "unknown field {acount}",
        "did you mean account? fields here: name, number, account",
    ),
    (
        6,
        '  verified: [{say: "Hi {group}."}, {transfer: verified}]',
        6,
        "on.verified[0].say",
        "unknown field {group}",
        "fields here: name, number, account",
    ),
    (
        8,
        '  failed: [{say: "Sorry, {name}."}, hangup]',
        8,
        "on.failed[0].say",
        "unknown field {name}",
        "only on.verified has fields: take {name} out",
    ),
    (
        10,
        "voipnow: {ask_context: a, transfer_context: t, ask_contxt: b}",
        10,
        "voipnow.ask_contxt",
        "unknown key",
        "did you mean ask_context? keys here: ask_context, transfer_context, findme_context,"
        " voicemail_context, caller_name, caller_number, sound_folder, voice,"
        " transfer_variable, number_format, jump_option",
    ),
    (
        4,
        "verify: {by: account, claim: account}",
        4,
        "verify.pin",
        "Missing data for required field.",
        "add pin: <the question holding the PIN>",
    ),
    (
        4,
        "verify: {by: account, pin: pin}",
        4,
        "verify.claim",
        "required with by: account",
        "add claim: <the question holding the account number>",
    ),
    (
        8,
        "  failed: [hangup]\n  failed: [hangup]",
        9,
        "on.failed",
        "duplicate key: only the last one counts",
        "delete one of them, or merge them into one",
    ),
]


@pytest.mark.parametrize(("number", "text", "line", "field", "message", "hint"), HINT_CASES)
def test_check_prints_each_kind_with_its_hint(
    cli: FlaskCliRunner,
    flows_dir: Path,
    number: int,
    text: str,
    line: int,
    field: str,
    message: str,
    hint: str,
) -> None:
    lines = HINTED.splitlines()
    lines[number - 1] = text
    broken = flows_dir / "broken.yaml"
    broken.write_text("\n".join(lines) + "\n")

    result = cli.invoke(args=["forms", "check"])

    assert result.exit_code == 1
    printed = result.output.splitlines()
    assert f"{broken}:{line}: {field}: {message} (hint: {hint})" in printed, result.output


def test_hinted_base_flow_is_valid(tmp_path: Path) -> None:
    # So each case above reports the one problem it makes, not one of the base.
    path = tmp_path / "hinted.yaml"
    path.write_text(HINTED)

    assert load_flow(path).name == "hinted"


def test_yaml_syntax_problem_has_a_hint(cli: FlaskCliRunner, flows_dir: Path) -> None:
    broken = flows_dir / "broken.yaml"
    broken.write_text(HINTED.replace("verify: {", "verify: by: {"))

    result = cli.invoke(args=["forms", "check", str(broken)])

    assert result.exit_code == 1
    assert f"{broken}:4: YAML syntax: " in result.output
    assert '(hint: indent with spaces, not tabs; put text with a colon, # or braces in "double' in (
        result.output
    )


@pytest.mark.parametrize(("edits", "line", "field", "fragment"), CASES)
def test_every_rule_has_a_hint(
    tmp_path: Path, edits: dict[int, str], line: int, field: str, fragment: str
) -> None:
    with pytest.raises(FlowFileError) as caught:
        load_flow(write_flow(tmp_path, edits))

    for problem in caught.value.problems:
        if (problem.line, problem.field) == (line, field):
            # "Must be one of: a, b, c." names the fix itself.
            assert problem.hint or problem.message.startswith("Must be one of"), problem


def test_check_reports_every_problem_in_every_flow(cli: FlaskCliRunner, flows_dir: Path) -> None:
    first, second = flows_dir / "a_broken.yaml", flows_dir / "b_broken.yaml"
    first.write_text(HINTED.replace("claim: account", "claim: acount"))
    second.write_text(
        HINTED.replace('{say: "Sorry."}, hangup', "{dial: 5}").replace("{name}", "{nam}")
    )

    result = cli.invoke(args=["forms", "check"])

    assert result.exit_code == 1
    assert [line.split(" (hint: ")[0] for line in result.output.splitlines()] == [
        f"{first}:4: verify.claim: no question named acount",
        f"{second}:6: on.verified[0].say: unknown field {{nam}}",
        f"{second}:8: on.failed[0].dial: unknown step",
        "3 problem(s) in 2 file(s); 2 flow(s) OK",
    ]


def test_problem_str_puts_the_hint_in_brackets() -> None:
    problem = Problem("x.yaml", 7, "verify.pin", "no question named code", "questions are: pin")

    assert str(problem) == "x.yaml:7: verify.pin: no question named code (hint: questions are: pin)"
    assert str(Problem("x.yaml", 1, "", "the file is empty", "start from a copy")) == (
        "x.yaml:1: the file is empty (hint: start from a copy)"
    )
    # One line each, so a logged problem stays one log line.
    assert "\n" not in str(problem)


# --- the PIN question against the PIN policy -------------------------------------


def pin_max_digits_line(path: Path) -> int:
    """The line of the PIN question's `max_digits: 8` in a shipped flow."""
    lines = path.read_text().splitlines()
    return lines.index("    max_digits: 8") + 1


def test_check_reports_shipped_flows_that_cannot_take_every_pin_the_policy_allows(
    cli_app: Flask, cli: FlaskCliRunner, flows_dir: Path
) -> None:
    cli_app.config["PIN_MAX_LENGTH"] = 10  # PINs of 9 and 10 digits allowed

    result = cli.invoke(args=["forms", "check"])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{flows_dir / name}.yaml:{pin_max_digits_line(flows_dir / f'{name}.yaml')}: "
        "questions[1].max_digits: PIN question pin takes at most 8 digits, but PINs may "
        "have 10 (GLUE_PIN_MAX_LENGTH): longer PINs could never be keyed in "
        "(hint: make max_digits 10, or set GLUE_PIN_MAX_LENGTH=8)"
        for name in ("group_line", "verify_caller")
    ] + ["2 problem(s) in 2 file(s); 0 flow(s) OK"]


def test_check_reports_a_pin_question_asking_for_more_digits_than_pins_may_have(
    cli_app: Flask, cli: FlaskCliRunner, flows_dir: Path
) -> None:
    cli_app.config["PIN_MIN_LENGTH"] = 3
    path = flows_dir / "verify_caller.yaml"
    line = path.read_text().splitlines().index("    min_digits: 4") + 1

    result = cli.invoke(args=["forms", "check", str(path)])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}:{line}: questions[1].min_digits: PIN question pin takes at least 4 digits, "
        "but PINs may have 3 (GLUE_PIN_MIN_LENGTH): shorter PINs could never be keyed in "
        "(hint: make min_digits 3, or set GLUE_PIN_MIN_LENGTH=4)",
        "1 problem(s) in 1 file(s); 0 flow(s) OK",
    ]


def test_check_takes_a_pin_question_without_max_digits_as_didml_does(
    cli_app: Flask, cli: FlaskCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "open.yaml"
    path.write_text(HINTED)  # its pin question has no min_digits nor max_digits
    assert cli.invoke(args=["forms", "check", str(path)]).exit_code == 0
    cli_app.config["PIN_MAX_LENGTH"] = 21

    result = cli.invoke(args=["forms", "check", str(path)])

    assert result.exit_code == 1
    assert (
        f"{path}:3: questions[1].max_digits: PIN question pin takes at most 20 digits "
        "(no max_digits: DIDforSale's <Gather> default), but PINs may have 21" in result.output
    )


def test_check_accepts_a_pin_question_taking_more_lengths_than_pins_have(
    cli: FlaskCliRunner, flows_dir: Path
) -> None:
    # Harmless: a caller keying 12 digits hears a wrong PIN, as for any wrong PIN.
    path = flows_dir / "verify_caller.yaml"
    path.write_text(path.read_text().replace("    max_digits: 8\n", "    max_digits: 12\n"))

    result = cli.invoke(args=["forms", "check"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 flows OK"
