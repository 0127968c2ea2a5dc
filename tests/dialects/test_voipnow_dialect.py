"""VoipNow `<Response>` rendering and Call Interactive request parsing (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from app.dialects import voipnow
from app.dialects.base import Cursor
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
from app.neutral.turn import MAX_CALL_ID, MalformedRequest

BLOCK = {
    "ask_context": "glue_ask",
    "transfer_context": "glue_transfer",
    "voicemail_context": "glue_voicemail",
}
CURSOR = Cursor("verified", 0, 0)


def parse_response(body: bytes) -> etree._Element:
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(body)
    assert root.tag == "Response"
    return root


def verbs(body: bytes) -> list[tuple[str, dict[str, str], str | None]]:
    """Each verb as (tag, attributes, text), the glue_turn SetVar first and dropped."""
    first, *rest = parse_response(body)
    assert (first.tag, first.get("name")) == ("SetVar", "glue_turn")
    return [(el.tag, {str(k): str(v) for k, v in el.attrib.items()}, el.text) for el in rest]


def jump(context: str) -> tuple[str, dict[str, str], None]:
    return ("Jump", {"context": context, "option": "s", "priority": "1"}, None)


def setvar(name: str, value: str | None) -> tuple[str, dict[str, str], str | None]:
    return ("SetVar", {"name": name}, value)


def render(steps: list[Any], block: dict[str, str] = BLOCK) -> bytes:
    rendered = voipnow.render(steps, block, CURSOR)
    assert rendered.consumed == len(steps)
    return rendered.body


def test_a_whole_sequence_goes_in_one_response() -> None:
    steps: list[Step] = [
        Say("Thank you, Ada."),
        SayDigits("1001"),
        Pause(2),
        Transfer("+13125550101"),
    ]
    assert verbs(render(steps)) == [
        ("PlayTTS", {}, "Thank you, Ada."),
        ("PlayTTS", {}, "1 0 0 1"),
        ("Pause", {"length": "2"}, None),
        setvar("transfer_to", "13125550101"),
        jump("glue_transfer"),
    ]


def test_every_response_first_sets_the_next_turn() -> None:
    body = voipnow.render([Hangup()], BLOCK, Cursor("retry", 1, 4)).body
    first = parse_response(body)[0]
    assert (first.tag, first.get("name"), first.text) == ("SetVar", "glue_turn", "5")


def test_voice_is_used_when_set() -> None:
    body = render([Say("Hello."), Hangup()], {**BLOCK, "voice": "Alice-8KHz"})
    assert verbs(body) == [("PlayTTS", {"voice": "Alice-8KHz"}, "Hello."), ("Hangup", {}, None)]


def test_ask_forgets_the_answers_and_jumps_to_the_ask_context() -> None:
    body = render([Say("That did not match."), Ask(("account", "pin"))])
    assert verbs(body) == [
        ("PlayTTS", {}, "That did not match."),
        setvar("account", None),  # empty
        setvar("pin", None),
        jump("glue_ask"),
    ]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (Transfer("+442071838750"), [setvar("transfer_to", "442071838750"), jump("glue_transfer")]),
        (FindMe(list_id="77"), [jump("77")]),
        (
            FindMe(numbers=("+13125550101", "+13125550102")),
            [
                setvar("findme_to", "13125550101&13125550102"),
                setvar("transfer_to", "13125550101&13125550102"),
                jump("glue_transfer"),
            ],
        ),
        (VirtualReceptionist("12"), [jump("12")]),
        (Voicemail("200"), [setvar("voicemail_box", "200"), jump("glue_voicemail")]),
        (Hangup(), [("Hangup", {}, None)]),
    ],
)
def test_each_hand_over(step: Step, expected: list[Any]) -> None:
    assert verbs(render([step])) == expected


def test_findme_numbers_go_to_their_own_context_when_there_is_one() -> None:
    block = {**BLOCK, "findme_context": "glue_findme"}
    body = render([FindMe(numbers=("+13125550101", "+13125550102"))], block)
    assert verbs(body) == [setvar("findme_to", "13125550101&13125550102"), jump("glue_findme")]


@pytest.mark.parametrize(
    ("number_format", "us", "uk"),
    [
        ("international", "13125550101", "442071838750"),
        ("e164", "+13125550101", "+442071838750"),
        ("national", "3125550101", "02071838750"),
    ],
)
def test_number_formats(number_format: str, us: str, uk: str) -> None:
    block = {**BLOCK, "number_format": number_format, "transfer_variable": "dest"}
    assert verbs(render([Transfer("+13125550101")], block))[0] == setvar("dest", us)
    assert verbs(render([Transfer("+442071838750")], block))[0] == setvar("dest", uk)


def test_jump_option_is_configurable() -> None:
    [only] = verbs(render([VirtualReceptionist("Sales menu")], {"jump_option": "start"}))
    assert only == ("Jump", {"context": "Sales menu", "option": "start", "priority": "1"}, None)


def test_run_form_sets_its_parameters_and_waits_for_the_context_to_call_back() -> None:
    steps: list[Step] = [Say("One moment."), RunForm("survey", {"name": "Ada"}), Hangup()]
    rendered = voipnow.render(steps, BLOCK, CURSOR)
    # The form's context calls Glue again; the hang-up waits for that request.
    assert rendered.consumed == 2
    assert verbs(rendered.body) == [
        ("PlayTTS", {}, "One moment."),
        setvar("name", "Ada"),
        jump("survey"),
    ]


@pytest.mark.parametrize(
    ("step", "key"),
    [
        (Ask(("pin",)), "ask_context"),
        (Transfer("+13125550101"), "transfer_context"),
        (FindMe(numbers=("+13125550101",)), "transfer_context"),
        (Voicemail("200"), "voicemail_context"),
    ],
)
def test_a_missing_context_raises(step: Step, key: str) -> None:
    with pytest.raises(voipnow.MissingSetting, match=key):
        voipnow.render([Say("Hi."), step], {}, CURSOR)


def test_xml_special_characters_survive_intact() -> None:
    name = "Patrick O'Brien & Sons <x>"
    body = render([Say(f"Thank you, {name}."), VirtualReceptionist('a"b&c')])
    assert b"&amp;" in body and b"&lt;x&gt;" in body
    assert verbs(body) == [("PlayTTS", {}, f"Thank you, {name}."), jump('a"b&c')]


def test_hangup_and_empty_replies() -> None:
    assert [el.tag for el in parse_response(voipnow.render_hangup())] == ["Hangup"]
    assert len(parse_response(voipnow.render_empty())) == 0


def test_empty_text_is_not_spoken() -> None:
    assert verbs(render([Say(""), SayDigits(""), Hangup()])) == [("Hangup", {}, None)]


# Parsing


FIELDS = {
    "CallID": "1f2e3d",
    "CallerIDNum": "3125550199",
    "CallerIDName": "Ada",
    "CalledDID": "3125550000",
    "CalledExtension": "0003*001",
    "CalledNumber": "3125550000",
    "CallerExtension": "",
    "CallFlow": "IN",
    "CallStatus": "CALLING",
    "CallAPIID": "77",
    "EventType": "dialin",
    "key": "secret",
    "glue_turn": "3",
    "account": "1001",
    "pin": "2468",
    "campaign": "spring",
}


def test_parse_reads_platform_fields_answers_and_turn() -> None:
    turn = voipnow.parse(FIELDS, max_length=256)
    assert (turn.platform, turn.call_id, turn.caller) == ("voipnow", "1f2e3d", "3125550199")
    assert dict(turn.answers) == {"account": "1001", "pin": "2468", "campaign": "spring"}
    assert dict(turn.pass_through) == {"turn": "3"}
    assert dict(turn.fields) == FIELDS


@pytest.mark.parametrize("value", ["", "null", "$glue_turn", "-1", "²"])
def test_an_unset_or_odd_turn_is_no_turn(value: str) -> None:
    assert voipnow.parse_pass_through({"glue_turn": value}) == {}
    assert voipnow.parse_pass_through({}) == {}


@pytest.mark.parametrize("caller", ["", "null"])
def test_no_caller_id(caller: str) -> None:
    assert voipnow.parse({"CallID": "a", "CallerIDNum": caller}, max_length=256).caller is None


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"CallID": "  "},
        {"CallID": "a" * (MAX_CALL_ID + 1)},
        {"CallID": "a", "CallerIDNum": "1" * 300},
    ],
)
def test_parse_refuses_requests_that_are_not_a_turn(values: dict[str, str]) -> None:
    with pytest.raises(MalformedRequest):
        voipnow.parse(values, max_length=256)


@pytest.mark.parametrize(
    "turn", ["9" * 10, "9" * 5000, "\u00b2", "\u0661\u0662", "\uff11", "-1", "1.0", "x"]
)
def test_a_turn_that_is_no_bounded_ascii_number_is_malformed(turn: str) -> None:
    with pytest.raises(MalformedRequest):
        voipnow.parse({"CallID": "a", "glue_turn": turn}, max_length=10_000)


@pytest.mark.parametrize("turn", ["", "null", "$glue_turn", "999999999", " 7 "])
def test_an_unset_turn_or_a_number_is_a_turn(turn: str) -> None:
    assert voipnow.parse({"CallID": "a", "glue_turn": turn}, max_length=256).call_id == "a"


def test_fields_glue_does_not_read_are_kept_whatever_their_length() -> None:
    """Which answers a flow reads is the runner's to check: parse refuses none."""
    values = {"CallID": "a", "pin": "1" * 300, "campaign": "c" * 5000, "x" * 300: "1"}
    turn = voipnow.parse(values, max_length=256)
    assert dict(turn.fields) == values
    assert turn.answers["campaign"] == "c" * 5000


def test_volatile_fields_are_none() -> None:
    """Nothing but glue_turn differs between turns, and it must count."""
    assert not voipnow.VOLATILE_FIELDS
    assert "glue_turn" in voipnow.PLATFORM_FIELDS


def test_play_is_a_playsound_and_a_transfer_can_set_the_caller_id() -> None:
    from app.dialects.base import Cursor
    from app.neutral.steps import Play, Transfer

    block = {
        "transfer_context": "glue_transfer",
        "caller_name": "Glue desk",
        "caller_number": "+13125550199",
        "sound_folder": "glue",
    }
    reply = etree.fromstring(
        voipnow.render(
            [Play("welcome"), Transfer("+13125550101")], block, Cursor("verified", 0, 0)
        ).body
    )
    tags = [el.tag for el in reply]
    assert tags == ["SetVar", "PlaySound", "SetVar", "SetCaller", "Jump"]
    sound = reply.find("PlaySound")
    assert sound is not None and (sound.text, sound.get("folder")) == ("welcome", "glue")
    caller = reply.find("SetCaller")
    assert caller is not None
    assert (caller.get("name"), caller.get("number")) == ("Glue desk", "13125550199")
