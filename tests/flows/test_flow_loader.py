"""Flow files: YAML -> Flow, and every rule reported with its line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.flows.loader import FlowFileError, Problem, load_dir, load_flow
from app.flows.model import Question, Verify
from app.neutral.outcomes import DEFAULT_OUTCOMES
from app.neutral.steps import (
    Ask,
    FindMe,
    Hangup,
    Pause,
    RunForm,
    Say,
    SayDigits,
    Step,
    Transfer,
    VirtualReceptionist,
    Voicemail,
)
from tests.helpers.flows import CASES, write
from tests.helpers.settings import PROJECT_ROOT

FLOWS = PROJECT_ROOT / "survo_forms"


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(FlowFileError) as info:
        load_flow(path)
    return info.value.problems


def find(problems: list[Problem], line: int, field: str) -> Problem:
    for problem in problems:
        if (problem.line, problem.field) == (line, field):
            return problem
    listing = "\n".join(map(str, problems))
    raise AssertionError(f"no problem at {line} {field}; got:\n{listing}")


# --- good flows ---------------------------------------------------------------


def test_verify_caller_loads() -> None:
    flow = load_flow(FLOWS / "verify_caller.yaml")

    assert flow.name == "verify_caller"
    assert flow.source == str(FLOWS / "verify_caller.yaml")
    assert flow.description == "Verify a caller by account number and PIN."
    assert flow.questions == (
        Question(
            "account",
            "digits",
            prompt="Please enter your account number, then press pound.",
            min_digits=1,
            max_digits=10,
        ),
        Question(
            "pin",
            "digits",
            prompt="Please enter your PIN, then press pound.",
            min_digits=4,
            max_digits=8,
            secret=True,
        ),
    )
    assert flow.verify == Verify(by="account", claim="account", pin="pin", tries=3)
    assert flow.outcomes == {
        "verified": (Say("Thank you, {name}."), Transfer("verified")),
        "retry": (Say("That did not match. Please try again."), Ask(("account", "pin"))),
        "failed": (Say("Sorry, we could not verify you."), Voicemail("200")),
        "locked": (Say("This account is locked. Please try again later."), Hangup()),
        "no_input": (Say("We did not hear anything. Goodbye."), Hangup()),
        "error": (
            Say("We are sorry, something went wrong. Please call again later."),
            Hangup(),
        ),
    }
    assert flow.platforms["ifbyphone"] == {
        "survo": "4101",
        "say_survo": "4102",
        "say_parameter": "message",
    }
    assert flow.platforms["voipnow"] == {
        "ask_context": "glue_ask",
        "transfer_context": "glue_transfer",
        "voicemail_context": "glue_voicemail",
        "transfer_variable": "transfer_to",
        "number_format": "international",
        "jump_option": "s",
    }


def test_group_line_loads() -> None:
    flow = load_flow(FLOWS / "group_line.yaml")

    assert flow.name == "group_line"
    assert [q.name for q in flow.questions] == ["group", "pin"]
    pin = flow.question("pin")
    assert pin is not None and pin.secret
    assert flow.verify == Verify(by="group", claim="group", pin="pin", tries=3)
    assert flow.outcomes["verified"] == (Say("Welcome, {name}."), FindMe(to_verified=True))
    assert flow.outcomes["retry"][-1] == Ask(("group", "pin"))
    assert flow.platform("ifbyphone") == {
        "survo": "4201",
        "say_survo": "4202",
        "say_parameter": "message",
    }


def test_missing_outcomes_take_defaults(tmp_path: Path) -> None:
    flow = load_flow(write(tmp_path))

    assert flow.outcomes["retry"] == (Ask(("account", "pin")),)
    for outcome in ("locked", "no_input", "error"):
        assert flow.outcomes[outcome] == DEFAULT_OUTCOMES[outcome]
    assert flow.verify.tries == 3


@pytest.mark.parametrize("ask", ["all", "[]", "null"])
def test_ask_all_means_every_question(tmp_path: Path, ask: str) -> None:
    flow = load_flow(write(tmp_path, {8: f"  failed: [{{ask: {ask}}}]"}))

    assert flow.outcomes["failed"] == (Ask(("account", "pin")),)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("[hangup]", Hangup()),
        ("[{hangup: null}]", Hangup()),
        ('[{say: "Bye."}, hangup]', Say("Bye.")),
        ('[{say_digits: "1 2 3"}, hangup]', SayDigits("1 2 3")),
        ("[{pause: 2}, hangup]", Pause(2)),
        ("[{ask: [pin]}]", Ask(("pin",))),
        ("[{survo: 4200}]", RunForm("4200")),
        (
            "[{survo: {id: '4200', user_parameters: {note: Hello}}}]",
            RunForm("4200", {"note": "Hello"}),
        ),
        ('[{transfer: "(312) 555-1212"}]', Transfer("+13125551212")),
        ("[{transfer: +442079460018}]", Transfer("+442079460018")),
        ("[{findme: 1234}]", FindMe(list_id="1234")),
        (
            '[{findme: ["312-555-1212", "+13125551313"]}]',
            FindMe(numbers=("+13125551212", "+13125551313")),
        ),
        ("[{vr: 77}]", VirtualReceptionist("77")),
        ("[{voicemail: 0200}]", Voicemail("0200")),  # stays text: no octal surprise
    ],
)
def test_steps_parse(tmp_path: Path, steps: str, expected: Step) -> None:
    flow = load_flow(write(tmp_path, {8: f"  failed: {steps}"}))

    assert flow.outcomes["failed"][0] == expected


def test_yaml_words_stay_text(tmp_path: Path) -> None:
    # YAML 1.1 would read `on`, `yes` and `no` as booleans.
    choices = "  - {name: ok, type: multiple_choice, choices: [yes, no, on]}"
    flow = load_flow(write(tmp_path, {4: f"  - {{name: pin, type: digits}}\n{choices}"}))

    assert flow.question("ok") == Question("ok", "multiple_choice", choices=("yes", "no", "on"))


def test_caller_id_needs_no_claim_and_group_fields(tmp_path: Path) -> None:
    by_phone = load_flow(write(tmp_path, {5: "verify: {by: caller_id, pin: pin, tries: 5}"}))
    assert by_phone.verify == Verify(by="caller_id", pin="pin", claim=None, tries=5)

    by_group = write(
        tmp_path,
        {
            5: "verify: {by: group, claim: account, pin: pin}",
            7: '  verified: [{say: "{name} {number} {group} {member}"}, {findme: verified}]',
        },
    )
    assert load_flow(by_group).outcomes["verified"][1] == FindMe(to_verified=True)


def test_no_say_survo_needed_without_text(tmp_path: Path) -> None:
    flow = load_flow(
        write(
            tmp_path,
            {
                7: "  verified: [{transfer: verified}]",
                8: "  failed: [hangup]\n  locked: [hangup]\n  error: [{voicemail: 200}]",
                9: "ifbyphone: {survo: 4101}",
            },
        )
    )

    assert flow.platform("ifbyphone") == {"survo": "4101", "say_parameter": "message"}


def test_other_platform_blocks_kept_as_dicts(tmp_path: Path) -> None:
    flow = load_flow(write(tmp_path, {9: "twiml: {}"}))

    assert flow.platforms == {"twiml": {}}


def test_voipnow_block_with_every_key(tmp_path: Path) -> None:
    block = (
        "voipnow:\n  ask_context: Ask again\n  transfer_context: 12\n"
        "  findme_context: ring\n  voicemail_context: vm\n  voice: Alice-8KHz\n"
        "  transfer_variable: dest\n  number_format: e164\n  jump_option: start"
    )
    flow = load_flow(write(tmp_path, {9: block}))

    assert flow.platform("voipnow") == {
        "ask_context": "Ask again",
        "transfer_context": "12",
        "findme_context": "ring",
        "voicemail_context": "vm",
        "voice": "Alice-8KHz",
        "transfer_variable": "dest",
        "number_format": "e164",
        "jump_option": "start",
    }


@pytest.mark.parametrize(
    "edits",
    [
        # Find Me numbers ring in findme_context; no transfer_context needed.
        {
            7: "  verified: [{findme: verified}]",
            9: "voipnow: {ask_context: a, findme_context: f}",
        },
        # A Find Me list is a context itself.
        {7: "  verified: [{findme: 77}]", 9: "voipnow: {ask_context: a}"},
        # A written retry that does not ask needs no ask_context.
        {
            7: "  verified: [{vr: 12}]\n  retry: [hangup]",
            9: "voipnow: {transfer_context: t}",
        },
    ],
)
def test_voipnow_contexts_needed_only_by_the_steps_used(
    tmp_path: Path, edits: dict[int, str]
) -> None:
    assert load_flow(write(tmp_path, edits)).platform("voipnow")


@pytest.mark.parametrize(("edits", "line", "field", "fragment"), CASES)
def test_rule_reported_at_line(
    tmp_path: Path, edits: dict[int, str], line: int, field: str, fragment: str
) -> None:
    problem = find(problems_of(write(tmp_path, edits)), line, field)

    assert fragment in str(problem)  # message or hint
    assert problem.file == str(tmp_path / "flow.yaml")


# --- whole files --------------------------------------------------------------


def test_all_problems_reported_at_once_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            3: "  - {name: account, type: number}",
            5: "verify: {by: account, claim: account, pin: pin, tries: 0}",
            7: '  verified: [{say: "Hi {group}."}, {transfer: "12"}]',
            9: "ifbyphone: {survo: 4101, say_survo: 4102}\nextra: 1",
        },
    )

    problems = problems_of(path)

    assert [(p.line, p.field) for p in problems] == [
        (3, "questions[0].type"),
        (5, "verify.tries"),
        (7, "on.verified[0].say"),
        (7, "on.verified[1].transfer"),
        (10, "extra"),
    ]


def test_problem_str_is_file_line_field_message() -> None:
    problem = Problem("survo_forms/x.yaml", 7, "on.verified[1].transfer", "invalid phone")

    assert str(problem) == "survo_forms/x.yaml:7: on.verified[1].transfer: invalid phone"
    assert str(Problem("x.yaml", 1, "", "the file is empty")) == "x.yaml:1: the file is empty"


def test_error_message_lists_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, {3: "  - {name: account, type: number}", 8: "  failed: []"})

    with pytest.raises(FlowFileError) as info:
        load_flow(path)

    text = str(info.value)
    assert text.startswith("2 problems in flow files:")
    assert f"{path}:3: questions[0].type:" in text
    assert f"{path}:8: on.failed: must have at least one step" in text


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, {5: "verify: by: account"}))

    assert (problem.line, problem.field) == (5, "")
    assert "YAML syntax" in problem.message
    assert "mapping values are not allowed" in problem.message


def test_yaml_unclosed_bracket(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, {7: "  verified: [hangup", 8: "  failed: []"}))

    # PyYAML notices at the next key; the message says where the [ began.
    assert (problem.line, problem.field) == (8, "")
    assert "flow sequence (from line 7): expected ',' or ']'" in problem.message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")

    hint = "start from a copy of survo_forms/verify_caller.yaml, the commented example"
    assert problems_of(path) == [Problem(str(path), 1, "", "the file is empty", hint)]


def test_file_name_must_be_a_flow_name(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, name="my flow"))

    assert (problem.line, problem.field) == (1, "")
    assert "file name" in problem.message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("# a list, not a flow\n- hangup\n")

    (problem,) = problems_of(path)

    assert (problem.line, problem.field) == (2, "")
    assert "mapping" in problem.message


def test_load_dir_keeps_good_flows_and_collects_problems(tmp_path: Path) -> None:
    write(tmp_path, name="good")
    write(tmp_path, {8: "  failed: []"}, name="bad")
    (tmp_path / "notes.txt").write_text("not a flow")

    flows, problems = load_dir(tmp_path)

    assert list(flows) == ["good"]
    assert [(Path(p.file).name, p.line, p.field) for p in problems] == [
        ("bad.yaml", 8, "on.failed")
    ]


def test_load_dir_shipped_flows_are_clean() -> None:
    flows, problems = load_dir(FLOWS)

    assert problems == []
    assert set(flows) == {"verify_caller", "group_line"}


# didML / TwiML blocks, question order, reserved names (added with those platforms)

VOICE_XML_FLOW = """\
questions:
  - {name: account, type: digits}
  - {name: pin, type: digits, secret: true}
verify: {by: account, claim: account, pin: pin}
on:
  verified: [{transfer: verified}]
  failed: [{voicemail: 200}]
twiml:
  voice: alice
  caller_id: "(312) 555-0100"
  voicemail: {200: "312 555 0200"}
  findme: {"77": ["+13125550101", "3125550102"]}
  vr: {menu1: "https://ivr.example.com/menu"}
didml:
  voicemail_seconds: 60
"""


def test_voice_xml_blocks_are_validated_and_normalised(tmp_path: Path) -> None:
    path = tmp_path / "voice.yaml"
    path.write_text(VOICE_XML_FLOW)
    flow = load_flow(path)
    twiml = flow.platform("twiml")
    assert twiml["caller_id"] == "+13125550100"
    assert twiml["voicemail"] == {"200": "+13125550200"}
    assert twiml["findme"] == {"77": ["+13125550101", "+13125550102"]}
    assert flow.platform("didml") == {"voicemail_seconds": 60}


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("twiml: {voicemail: {200: not-a-number}}", "twiml.voicemail"),
        ("twiml: {vr: {m: ftp://x}}", "twiml.vr"),
        ("didml: {voicemail_seconds: 0}", "didml.voicemail_seconds"),
        ("didml: {colour: red}", "didml.colour"),
    ],
)
def test_voice_xml_block_errors_name_the_field(tmp_path: Path, block: str, field: str) -> None:
    path = tmp_path / "voice.yaml"
    path.write_text(VOICE_XML_FLOW.split("twiml:")[0] + block + "\n")
    with pytest.raises(FlowFileError) as caught:
        load_flow(path)
    assert any(p.field.startswith(field) and p.line == 8 for p in caught.value.problems), [
        str(p) for p in caught.value.problems
    ]


def test_the_pin_question_must_come_after_the_claim(tmp_path: Path) -> None:
    path = tmp_path / "order.yaml"
    path.write_text(
        VOICE_XML_FLOW.replace(
            "  - {name: account, type: digits}\n  - {name: pin, type: digits, secret: true}\n",
            "  - {name: pin, type: digits, secret: true}\n  - {name: account, type: digits}\n",
        )
    )
    with pytest.raises(FlowFileError) as caught:
        load_flow(path)
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (4, "verify.pin")
    assert "must come after account" in problem.message


def test_a_flow_may_not_be_named_after_a_route(tmp_path: Path) -> None:
    path = tmp_path / "status.yaml"
    path.write_text(VOICE_XML_FLOW)
    with pytest.raises(FlowFileError) as caught:
        load_flow(path)
    assert [p.line for p in caught.value.problems] == [1]


def test_a_play_step_and_voipnow_caller_id(tmp_path: Path) -> None:
    from app.neutral.steps import Play

    flow_text = VOICE_XML_FLOW.split("twiml:")[0].replace(
        "verified: [{transfer: verified}]",
        'verified: [{play: "https://sounds.example.com/hi.wav"}, {transfer: verified}]',
    )
    voipnow_block = (
        "voipnow: {ask_context: a, transfer_context: t, voicemail_context: v,"
        ' caller_name: Desk, caller_number: "312 555 0199"}\n'
    )
    path = tmp_path / "play.yaml"
    path.write_text(flow_text + voipnow_block)
    flow = load_flow(path)
    assert flow.outcomes["verified"][0] == Play("https://sounds.example.com/hi.wav")
    assert flow.platform("voipnow")["caller_number"] == "+13125550199"
