"""A small flow file to break one line at a time, and the problems each break
must be reported at (by `load_flow` and by `flask forms check`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers.settings import PROJECT_ROOT

# Line numbers matter: tests replace lines by number and expect problems on them.
BASE = """\
description: Test flow.
questions:
  - {name: account, type: digits, min_digits: 1, max_digits: 10}
  - {name: pin, type: digits, min_digits: 4, max_digits: 8, secret: true}
verify: {by: account, claim: account, pin: pin}
on:
  verified: [{say: "Hi {name}."}, {transfer: verified}]
  failed: [{say: "Sorry."}, hangup]
ifbyphone: {survo: 4101, say_survo: 4102}
"""


def write(tmp_path: Path, edits: dict[int, str] | None = None, name: str = "flow") -> Path:
    """BASE with lines replaced (1-based; a replacement may span several lines)."""
    lines = BASE.splitlines()
    for number, text in (edits or {}).items():
        lines[number - 1] = text
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- one rule each: the problem's line and field ------------------------------

CASES = [
    # questions
    ({3: "  - {name: Account, type: digits}"}, 3, "questions[0].name", "must be a-z"),
    ({4: "  - {name: caller_id, type: digits}"}, 4, "questions[1].name", "request field"),
    ({4: "  - {name: account, type: digits}"}, 4, "questions[1].name", "duplicate"),
    ({3: "  - {name: account, type: number}"}, 3, "questions[0].type", "one of"),
    ({3: "  - {name: account}"}, 3, "questions[0].type", "Missing data"),
    ({3: "  - {name: account, type: digits, min_digits: 0}"}, 3, "questions[0].min_digits", ""),
    ({3: "  - {name: account, type: digits, max_digits: 201}"}, 3, "questions[0].max_digits", ""),
    (
        {3: "  - {name: account, type: digits, min_digits: 5, max_digits: 4}"},
        3,
        "questions[0].max_digits",
        "less than min_digits",
    ),
    (
        {3: "  - {name: account, type: yes_no, min_digits: 1}"},
        3,
        "questions[0].min_digits",
        "only for digits",
    ),
    ({3: "  - {name: account, type: multiple_choice}"}, 3, "questions[0].choices", "required"),
    (
        {3: "  - {name: account, type: multiple_choice, choices: []}"},
        3,
        "questions[0].choices",
        "at least one",
    ),
    (
        {3: "  - {name: account, type: multiple_choice, choices: [1]}"},
        3,
        "questions[0].choices[0]",
        "string",
    ),
    (
        {3: "  - {name: account, type: digits, choices: [a]}"},
        3,
        "questions[0].choices",
        "only for multiple_choice",
    ),
    ({3: "  - {name: account, type: digits, timeout: 61}"}, 3, "questions[0].timeout", ""),
    (
        {3: "  - {name: account, type: digits, finish_on_key: x}"},
        3,
        "questions[0].finish_on_key",
        "0-9",
    ),
    ({3: "  - {name: account, type: digits, secret: maybe}"}, 3, "questions[0].secret", "boolean"),
    ({3: "  - {name: account, type: digits, prompt: 5}"}, 3, "questions[0].prompt", "string"),
    (
        {3: "  - {name: account, type: digits, colour: red}"},
        3,
        "questions[0].colour",
        "unknown key",
    ),
    ({2: "questions: []", 3: "", 4: ""}, 2, "questions", "at least one question"),
    ({2: "", 3: "", 4: ""}, 1, "questions", "Missing data"),
    # verify
    ({5: "verify: {claim: account, pin: pin}"}, 5, "verify.by", "Missing data"),
    ({5: "verify: {by: phone, claim: account, pin: pin}"}, 5, "verify.by", "one of"),
    ({5: "verify: {by: account, pin: pin}"}, 5, "verify.claim", "required with by: account"),
    ({5: "verify:\n  by: group\n  pin: pin"}, 5, "verify.claim", "required with by: group"),
    ({5: "verify: {by: caller_id, claim: account, pin: pin}"}, 5, "verify.claim", "not used"),
    (
        {5: "verify: {by: account, claim: acct, pin: pin}"},
        5,
        "verify.claim",
        "no question named acct",
    ),
    ({5: "verify: {by: account, claim: account}"}, 5, "verify.pin", "Missing data"),
    (
        {5: "verify: {by: account, claim: account, pin: code}"},
        5,
        "verify.pin",
        "no question named code",
    ),
    ({4: "  - {name: pin, type: yes_no}"}, 5, "verify.pin", "must be of type digits"),
    ({5: "verify: {by: account, claim: account, pin: pin, tries: 11}"}, 5, "verify.tries", ""),
    ({5: "verify: {by: [account], claim: account, pin: pin}"}, 5, "verify.by", "string"),
    ({5: "verify: {by: account, claim: account, pin: [pin]}"}, 5, "verify.pin", "string"),
    (
        {5: "verify: {by: account, claim: account, pin: pin, lives: 3}"},
        5,
        "verify.lives",
        "unknown key",
    ),
    # outcomes
    ({7: ""}, 6, "on.verified", "Missing data"),
    ({8: ""}, 6, "on.failed", "Missing data"),
    ({8: "  failed: [hangup]\n  done: [hangup]"}, 9, "on.done", "unknown key"),
    ({8: "  failed: []"}, 8, "on.failed", "at least one step"),
    ({8: "  failed: hangup"}, 8, "on.failed", "list of steps"),
    ({6: "on: [hangup]", 7: "", 8: ""}, 6, "on", "mapping"),
    # step shapes
    ({8: "  failed: [goodbye]"}, 8, "on.failed[0]", "a step is hangup or one key"),
    ({8: "  failed: [{say: a, hangup: null}]"}, 8, "on.failed[0]", "one key"),
    ({8: "  failed: [{dial: 5}]"}, 8, "on.failed[0].dial", "unknown step"),
    ({8: "  failed: [{say: 5}, hangup]"}, 8, "on.failed[0].say", "string"),
    ({8: '  failed: [{say: ""}, hangup]'}, 8, "on.failed[0].say", "empty"),
    ({8: "  failed: [{pause: 0}, hangup]"}, 8, "on.failed[0].pause", ""),
    ({8: "  failed: [{pause: 61}, hangup]"}, 8, "on.failed[0].pause", ""),
    ({8: "  failed: [{ask: pin}]"}, 8, "on.failed[0].ask", "list of question names"),
    (
        {8: "  failed: [{ask: [account, colour]}]"},
        8,
        "on.failed[0].ask[1]",
        "no question named colour",
    ),
    ({8: "  failed: [{survo: 'a b'}]"}, 8, "on.failed[0].survo", "must be an id"),
    ({8: "  failed: [{survo: {user_parameters: {}}}]"}, 8, "on.failed[0].survo.id", "Missing data"),
    (
        {8: "  failed: [{survo: {id: 1, params: {}}}]"},
        8,
        "on.failed[0].survo.params",
        "unknown key",
    ),
    (
        {8: '  failed: [{survo: {id: 1, user_parameters: {"bad key": x}}}]'},
        8,
        "on.failed[0].survo.user_parameters.bad key",
        "must be a name",
    ),
    ({8: '  failed: [{transfer: "555"}]'}, 8, "on.failed[0].transfer", "invalid phone number"),
    ({8: "  failed: [{transfer: [1]}]"}, 8, "on.failed[0].transfer", "phone number"),
    (
        {8: '  failed: [{findme: ["+13125551212", "12"]}]'},
        8,
        "on.failed[0].findme[1]",
        "invalid phone",
    ),
    ({8: "  failed: [{findme: []}]"}, 8, "on.failed[0].findme", "at least one number"),
    ({8: "  failed: [{vr: [1]}]"}, 8, "on.failed[0].vr", "must be an id"),
    ({8: "  failed: [{voicemail: -2}]"}, 8, "on.failed[0].voicemail", "must be an id"),
    ({8: "  failed: [{hangup: now}]"}, 8, "on.failed[0].hangup", "takes no value"),
    # order of steps
    (
        {7: '  verified: [{transfer: verified}, {say: "Bye."}]'},
        7,
        "on.verified[1]",
        "unreachable: step after transfer",
    ),
    (
        {8: '  failed:\n    - hangup\n    - say: "Too late."'},
        10,
        "on.failed[1]",
        "step after hangup",
    ),
    ({8: '  failed: [{say: "Sorry."}]'}, 8, "on.failed[0]", "must end with"),
    ({8: '  failed:\n    - say: "Sorry."\n    - pause: 1'}, 10, "on.failed[1]", "must end with"),
    # templates
    (
        {7: '  verified: [{say: "Hi {group}."}, {transfer: verified}]'},
        7,
        "on.verified[0].say",
        "unknown field {group} (hint: fields here: name, number, account)",
    ),
    (
        {8: '  failed: [{say: "Sorry {name}."}, hangup]'},
        8,
        "on.failed[0].say",
        "unknown field {name}",
    ),
    (
        {8: '  failed: [{say_digits: "{account}"}, hangup]'},
        8,
        "on.failed[0].say_digits",
        "{account}",
    ),
    (
        {8: '  failed: [{survo: {id: 1, user_parameters: {who: "{name}"}}}]'},
        8,
        "on.failed[0].survo.user_parameters.who",
        "unknown field {name}",
    ),
    ({7: '  verified: [{say: "Hi {name"}, {transfer: verified}]'}, 7, "on.verified[0].say", "'}'"),
    ({7: '  verified: [{say: "{name.upper}"}, hangup]'}, 7, "on.verified[0].say", "{field}"),
    (
        {
            5: "verify: {by: group, claim: account, pin: pin}",
            7: '  verified: [{say: "Hi {account}."}, {findme: verified}]',
        },
        7,
        "on.verified[0].say",
        "fields here: name, number, group, member",
    ),
    # verified targets outside verified
    (
        {8: "  failed: [{transfer: verified}]"},
        8,
        "on.failed[0].transfer",
        "only be used in on.verified",
    ),
    (
        {8: "  failed: [{findme: verified}]"},
        8,
        "on.failed[0].findme",
        "only be used in on.verified",
    ),
    # platforms and top level
    ({9: "ifbyphone: {say_survo: 4102}"}, 9, "ifbyphone.survo", "Missing data"),
    ({9: "ifbyphone: {survo: abc, say_survo: 4102}"}, 9, "ifbyphone.survo", "numeric id"),
    ({9: "ifbyphone: {survo: 4101, say_survo: 0}"}, 9, "ifbyphone.say_survo", "numeric id"),
    (
        {9: "ifbyphone: {survo: 4101}"},
        9,
        "ifbyphone.say_survo",
        "says text in verified, failed, locked (default), error (default)",
    ),
    (
        {9: "ifbyphone:\n  survo: 4101\n  say_survo: 4102\n  say_parameter: a b"},
        12,
        "ifbyphone.say_parameter",
        "name",
    ),
    (
        {9: "ifbyphone: {survo: 4101, say_survo: 4102, voice: x}"},
        9,
        "ifbyphone.voice",
        "unknown key",
    ),
    ({9: "ifbyphone: {survo: 4101, say_survo: 4102}\ncolour: red"}, 10, "colour", "unknown key"),
    (
        {9: "voipnow: {transfer_context: t}"},
        9,
        "voipnow.ask_context",
        "required: the flow has ask in retry (default)",
    ),
    (
        {9: "voipnow:\n  ask_context: a"},
        9,
        "voipnow.transfer_context",
        "required: the flow has transfer in verified",
    ),
    (
        {7: '  verified: [{say: "Hi."}, {findme: verified}]', 9: "voipnow: {ask_context: a}"},
        9,
        "voipnow.transfer_context",
        "required: the flow has findme in verified",
    ),
    (
        {8: "  failed: [{voicemail: 200}]", 9: "voipnow: {ask_context: a, transfer_context: t}"},
        9,
        "voipnow.voicemail_context",
        "required: the flow has voicemail in failed",
    ),
    (
        {9: "voipnow:\n  ask_context: a\n  transfer_context: t\n  number_format: dotted"},
        12,
        "voipnow.number_format",
        "Must be one of: international, e164, national",
    ),
    (
        {9: "voipnow: {ask_context: a, transfer_context: t, transfer_variable: a b}"},
        9,
        "voipnow.transfer_variable",
        "must be a name",
    ),
    (
        {9: "voipnow: {ask_context: a, transfer_context: t, transfer_variable: glue_turn}"},
        9,
        "voipnow.transfer_variable",
        "Glue's own variable",
    ),
    (
        {9: "voipnow: {ask_context: [a], transfer_context: t}"},
        9,
        "voipnow.ask_context",
        "must be an IVR context",
    ),
    ({9: 'voipnow: {ask_context: "", transfer_context: t}'}, 9, "voipnow.ask_context", "context"),
    (
        {9: "voipnow: {ask_context: a, transfer_context: t, survo: 1}"},
        9,
        "voipnow.survo",
        "unknown key",
    ),
    ({3: "  - {name: glue_turn, type: digits}"}, 3, "questions[0].name", "request field name"),
    # YAML itself
    ({8: "  failed: [hangup]\n  failed: [hangup]"}, 9, "on.failed", "duplicate key"),
]


# The graph nodes a verified call of the shipped verify_caller flow goes through
# (its two questions, the check, the outcome and its steps), as graph.call_path names them.
VERIFIED_PATH = (
    "start",
    "question 1",
    "question 2",
    "verify",
    "outcome verified",
    "verified step 1",
    "verified step 2",
)


def shipped_copy(directory: Path) -> Path:
    """A copy of the shipped flows at `directory`, for a test that edits or
    publishes flows."""
    shutil.copytree(PROJECT_ROOT / "survo_forms", directory)
    return directory
