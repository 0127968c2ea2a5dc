"""`flask call simulate` against Glue on a real HTTP server: through Click's runner
with --digits, and typed at the prompt in a pseudo-terminal like a person would."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from click.testing import Result
from flask import Flask
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from app import create_app
from app.commands.simulator import Transcript, parse_digits
from app.models import Call
from tests.helpers.flows import shipped_copy
from tests.helpers.settings import PROJECT_ROOT, TEST_SECRETS

PLATFORMS = ["ifbyphone", "voipnow", "didml", "twiml"]
THANKS = 'says "Thank you, Ada Lovelace."'
VERIFIED_PATH = (
    'path: asked account, pin → verified → said "Thank you, Ada Lovelace." '
    "→ transfer to +13125550101"
)
RETRY = 'said "That did not match. Please try again."'
FAILED_PATH = (
    f"path: asked account, pin → retry → {RETRY} → asked account, pin → retry → {RETRY} "
    '→ asked account, pin → failed → said "Sorry, we could not verify you." → '
)
WAIT = 30  # seconds: the longest any step of a test may take


@pytest.fixture
def live_glue(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """Glue with the demo directory on a real threaded server at http://127.0.0.1:<port>."""
    database = tmp_path / "glue.db"
    shutil.copy(sqlite_template, database)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{database}",
            "FLOWS_DIR": str(PROJECT_ROOT / "survo_forms"),
            **TEST_SECRETS,
        },
        instance_path=str(tmp_path / "instance"),
    )
    loaded = app.test_cli_runner().invoke(args=["demo", "load"])
    assert loaded.exit_code == 0, loaded.output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        app.extensions["glue.engine"].dispose()


def simulate(app: Flask, base: str, platform: str, *extra: str, stdin: str | None = None) -> Result:
    args = ["call", "simulate", "verify_caller", "--platform", platform]
    args += ["--from", "3125550199", "--url", base, "--timeout", "10", *extra]
    return app.test_cli_runner().invoke(args=args, input=stdin)


def the_call(app: Flask, call_id: str) -> Call:
    with Session(app.extensions["glue.engine"]) as session:
        return session.scalars(select(Call).where(Call.platform_call_id == call_id)).one()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_right_pin_hears_thanks_and_is_transferred(
    live_glue: tuple[Flask, str], platform: str
) -> None:
    app, base = live_glue
    result = simulate(app, base, platform, "--digits", "1001#2468#", "--call-id", "sim-ok")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert THANKS in [line.strip() for line in lines]
    assert "  transferred to +13125550101" in lines
    assert lines[-1] == VERIFIED_PATH
    assert "keys> 1001" in lines and "keys> 2468" in lines
    call = the_call(app, "sim-ok")
    assert (call.platform, call.outcome, call.status) == (platform, "verified", "ended")
    if platform == "voipnow":  # the hang-up event was sent at the end
        assert call.platform_status == "completed"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_three_wrong_pins_end_in_voicemail(live_glue: tuple[Flask, str], platform: str) -> None:
    app, base = live_glue
    result = simulate(app, base, platform, "--digits", "1001#0000#" * 3, "--call-id", "sim-bad")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines.count('  says "That did not match. Please try again."') == 2
    assert '  says "Sorry, we could not verify you."' in lines
    assert "  recording a voicemail (box 200)" in lines
    assert lines[-1].startswith(FAILED_PATH), lines[-1]
    assert lines[-1].endswith("→ voicemail 200")
    assert the_call(app, "sim-bad").outcome == "failed"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_silence_hears_goodbye(live_glue: tuple[Flask, str], platform: str) -> None:
    app, base = live_glue
    result = simulate(app, base, platform, "--digits", "")

    assert result.exit_code == 0, result.output
    assert '  says "We did not hear anything. Goodbye."' in result.output.splitlines()
    assert "keys> (silence)" in result.output
    path = result.output.splitlines()[-1]
    assert "account (no input)" in path
    assert path.endswith('→ no_input → said "We did not hear anything. Goodbye." → hangup')


def test_keys_typed_at_the_prompt_and_end_of_input_is_silence(
    live_glue: tuple[Flask, str],
) -> None:
    app, base = live_glue
    # A letter is no key: asked again. Then the input ends: silence for the PIN.
    result = simulate(app, base, "twiml", stdin="1a\n1001#\n")

    assert result.exit_code == 0, result.output
    assert "only 0-9, * and #" in result.output
    path = result.output.splitlines()[-1]
    assert path.startswith("path: asked account, pin (no input), pin (no input) → no_input")


def test_a_server_that_is_not_there_exits_1(live_glue: tuple[Flask, str]) -> None:
    app, _ = live_glue
    result = simulate(app, "http://127.0.0.1:9", "twiml", "--digits", "1001#2468#")
    assert result.exit_code == 1
    assert "Error: cannot reach Glue at http://127.0.0.1:9/twiml/verify_caller" in result.output


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_http_error_is_printed_and_exits_1(live_glue: tuple[Flask, str], platform: str) -> None:
    app, base = live_glue
    result = simulate(app, f"{base}/nowhere", platform, "--digits", "1001#2468#")
    assert result.exit_code == 1
    assert "Error: 404 NOT FOUND from" in result.output
    assert TEST_SECRETS["IFBYPHONE_SECRET"] not in result.output  # keys are masked


def test_a_wrong_secret_is_refused_with_403(live_glue: tuple[Flask, str]) -> None:
    app, base = live_glue
    other = create_app(
        {"TESTING": True, "DATABASE_URL": "sqlite://", **TEST_SECRETS, "DIDML_SECRET": "wrong"},
        instance_path=app.instance_path,
    )
    args = ["call", "simulate", "verify_caller", "--platform", "didml", "--from", "3125550199"]
    result = other.test_cli_runner().invoke(args=[*args, "--url", base, "--digits", "1#"])
    other.extensions["glue.engine"].dispose()
    assert result.exit_code == 1
    assert "Error: 403 FORBIDDEN from" in result.output and "Forbidden" in result.output
    assert "key=***" in result.output and "wrong" not in result.output


def test_an_answer_that_is_no_xml_exits_1(
    live_glue: tuple[Flask, str], httpserver: HTTPServer
) -> None:
    app, _ = live_glue
    httpserver.expect_request("/twiml/verify_caller").respond_with_data("hello", status=200)
    result = simulate(app, httpserver.url_for("").rstrip("/"), "twiml")
    assert result.exit_code == 1
    assert "is no XML:\nhello" in result.output


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_unknown_flow_is_an_error_naming_the_flows(
    live_glue: tuple[Flask, str], platform: str
) -> None:
    app, base = live_glue
    args = ["call", "simulate", "verify_caler", "--platform", platform, "--from", "3125550199"]
    result = app.test_cli_runner().invoke(args=[*args, "--url", base, "--digits", "1001#2468#"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: no flow 'verify_caler' in {PROJECT_ROOT / 'survo_forms'} "
        "(did you mean verify_caller? flows are: group_line, verify_caller)\n"
    )
    with Session(app.extensions["glue.engine"]) as session:
        assert session.scalars(select(Call)).all() == []  # nothing was sent


def test_a_flow_that_does_not_load_is_an_error(
    live_glue: tuple[Flask, str], tmp_path: Path
) -> None:
    app, base = live_glue
    flows_dir = shipped_copy(tmp_path / "flows")
    (flows_dir / "broken.yaml").write_text("questions: []\n")
    other = create_app(
        {"TESTING": True, "DATABASE_URL": "sqlite://", "FLOWS_DIR": str(flows_dir), **TEST_SECRETS},
        instance_path=app.instance_path,
        strict_flows=False,
    )
    args = ["call", "simulate", "broken", "--platform", "twiml", "--from", "3125550199"]
    result = other.test_cli_runner().invoke(args=[*args, "--url", base, "--digits", "1#"])
    other.extensions["glue.engine"].dispose()
    assert result.exit_code == 1
    assert result.output == (
        "Error: flow 'broken' does not load: `flask forms check` lists its problems\n"
    )


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_person_types_at_the_prompt_in_a_terminal(
    live_glue: tuple[Flask, str], platform: str
) -> None:
    app, base = live_glue
    env = {
        **os.environ,
        "GLUE_DATABASE_URL": app.config["DATABASE_URL"],
        "GLUE_FLOWS_DIR": app.config["FLOWS_DIR"],
        **{f"GLUE_{name}": value for name, value in TEST_SECRETS.items()},
    }
    args = ["-m", "flask", "call", "simulate", "verify_caller", "--platform", platform]
    args += ["--from", "3125550199", "--url", base, "--timeout", "10"]
    child = pexpect.spawn(
        sys.executable, args, cwd=str(PROJECT_ROOT), env=env, encoding="utf-8", timeout=WAIT
    )
    try:
        child.expect_exact('asks account: "Please enter your account number, then press pound."')
        child.expect_exact("keys> ")
        child.sendline("1001")
        child.expect_exact('asks pin: "Please enter your PIN, then press pound."')
        child.expect_exact("keys> ")
        child.sendline("2468")
        child.expect_exact('says "Thank you, Ada Lovelace."')
        child.expect_exact("transferred to +13125550101")
        child.expect_exact(VERIFIED_PATH)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before


def test_digits_are_answers_separated_by_pound() -> None:
    assert parse_digits("1001#2468#") == ["1001", "2468"]
    assert parse_digits("1001#2468") == ["1001", "2468"]
    assert parse_digits("1001##") == ["1001", ""]
    assert parse_digits("") == []


def test_the_path_merges_questions_and_leaves_out_quiet_outcomes() -> None:
    transcript = Transcript(lambda _: None)
    transcript.answered("account", "1001")
    transcript.outcome_of(0)
    transcript.answered("pin", "")
    transcript.outcome_of(1)
    transcript.answered("pin", "2468")
    transcript.outcome_of(2)
    transcript.says("Hi.")
    transcript.ends("hangs up", "hangup")

    outcomes: list[str | None] = ["asking", "asking", "verified"]
    assert transcript.summary(outcomes) == (
        'asked account, pin (no input), pin → verified → said "Hi." → hangup'
    )
    assert transcript.summary(None) == 'asked account, pin (no input), pin → said "Hi." → hangup'


def test_several_answers_typed_on_one_line_are_taken_in_turn() -> None:
    from app.commands.simulator import Keypad

    typed = iter(["1001#2468#"])
    echoed: list[str] = []
    keypad = Keypad(None, echoed.append, read=lambda _prompt: next(typed))
    assert (keypad.press(), keypad.press()) == ("1001", "2468")
    assert echoed == ["keys> 2468"]  # the second was typed ahead, shown when used
