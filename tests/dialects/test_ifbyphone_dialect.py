"""IfbyPhone `<action>` rendering and request parsing (pure)."""

from __future__ import annotations

import pytest
from lxml import etree

from app.dialects import ifbyphone
from app.dialects.base import Cursor
from app.neutral.steps import (
    Ask,
    FindMe,
    Hangup,
    Pause,
    RunForm,
    Say,
    SayDigits,
    Transfer,
    VirtualReceptionist,
    Voicemail,
)
from app.neutral.turn import MalformedRequest

BLOCK = {"survo": "4101", "say_survo": "4102", "say_parameter": "message"}
CURSOR = Cursor("verified", 0, 0)


def parse_action(body: bytes) -> etree._Element:
    assert body.startswith(b"<?xml")
    root = etree.fromstring(body)
    assert root.tag == "action"
    assert not any(el.attrib for el in root.iter())  # IfbyPhone XML has no attributes
    return root


def test_messages_merge_into_one_read_aloud_survo_with_pass_through() -> None:
    steps = [Say("Thank you, Ada."), SayDigits("1001"), Pause(1), Transfer("+13125550101")]
    rendered = ifbyphone.render(steps, BLOCK, CURSOR)
    assert rendered.consumed == 3
    root = parse_action(rendered.body)
    assert root.findtext("app") == "survo"
    assert root.findtext("parameters/id") == "4102"
    assert root.findtext("parameters/user_parameters/message") == "Thank you, Ada. 1, 0, 0, 1"
    assert ifbyphone.decode_pass_through(root.findtext("parameters/p_t") or "") == {
        "turn": "1",
        "next": "verified:3",
    }


@pytest.mark.parametrize(
    ("step", "app", "parameters"),
    [
        (Transfer("+13125550101"), "transfer", {"destination": "3125550101"}),
        (Transfer("+442071838750"), "transfer", {"destination": "442071838750"}),
        (FindMe(list_id="77"), "findme", {"id": "77"}),
        (
            FindMe(numbers=("+13125550101", "+13125550102")),
            "findme",
            {"phone_list": "3125550101|3125550102"},
        ),
        (VirtualReceptionist("12"), "vr", {"id": "12"}),
        (Voicemail("200"), "voicemail", {"id": "200"}),
    ],
)
def test_each_building_block(step: object, app: str, parameters: dict[str, str]) -> None:
    rendered = ifbyphone.render([step], BLOCK, CURSOR)  # type: ignore[list-item]
    root = parse_action(rendered.body)
    assert rendered.consumed == 1
    assert root.findtext("app") == app
    assert {el.tag: el.text for el in root.find("parameters")} == parameters  # type: ignore[union-attr]


def test_hangup_has_no_parameters() -> None:
    root = parse_action(ifbyphone.render([Hangup()], BLOCK, CURSOR).body)
    assert [el.tag for el in root] == ["app"] and root.findtext("app") == "hangup"


def test_ask_runs_the_flows_survo_without_a_resume_point() -> None:
    root = parse_action(
        ifbyphone.render([Ask(("account", "pin"))], BLOCK, Cursor("retry", 1, 4)).body
    )
    assert root.findtext("parameters/id") == "4101"
    assert ifbyphone.decode_pass_through(root.findtext("parameters/p_t") or "") == {"turn": "5"}


def test_run_form_passes_user_parameters_and_resumes_after_it() -> None:
    step = RunForm("4200", {"name": "Ada"})
    root = parse_action(ifbyphone.render([step, Hangup()], BLOCK, CURSOR).body)
    assert root.findtext("parameters/id") == "4200"
    assert root.findtext("parameters/user_parameters/name") == "Ada"
    assert "next|verified:1" in (root.findtext("parameters/p_t") or "")


def test_xml_special_characters_in_names_survive_intact() -> None:
    name = "Patrick O'Brien & Sons <x>"
    body = ifbyphone.render([Say(f"Thank you, {name}."), Hangup()], BLOCK, CURSOR).body
    assert b"&amp;" in body and b"&lt;x&gt;" in body
    root = parse_action(body)
    assert root.findtext("parameters/user_parameters/message") == f"Thank you, {name}."


def test_without_say_survo_messages_are_skipped_not_broken() -> None:
    block = {"survo": "4101"}
    rendered = ifbyphone.render([Say("Hi"), Transfer("+13125550101")], block, CURSOR)
    assert rendered.consumed == 2
    assert parse_action(rendered.body).findtext("app") == "transfer"


def test_parse_reads_platform_fields_answers_and_pass_through() -> None:
    turn = ifbyphone.parse(
        {
            "caller_id": "3125550101",
            "session_id": "abc123",
            "timestamp": "2026-11-21 12:00:00",
            "p_t": "turn|2||next|verified:1",
            "account": "1001",
            "pin": "2468",
            "key": "secret",
        },
        max_length=256,
    )
    assert turn.call_id == "abc123" and turn.caller == "3125550101"
    assert dict(turn.answers) == {"account": "1001", "pin": "2468"}
    assert dict(turn.pass_through) == {"turn": "2", "next": "verified:1"}


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"session_id": "  "},
        {"session_id": "a", "caller_id": "1" * 300},
        {"session_id": "a", "p_t": "next|error:0||" + "x" * 300},
    ],
)
def test_parse_refuses_requests_that_are_not_a_turn(values: dict[str, str]) -> None:
    with pytest.raises(MalformedRequest):
        ifbyphone.parse(values, max_length=256)


@pytest.mark.parametrize(
    "turn", ["9" * 10, "9" * 5000, "\u00b2", "\u0661\u0662", "\uff11", "-1", "1.0", " 1"]
)
def test_a_turn_in_p_t_that_is_no_bounded_ascii_number_is_malformed(turn: str) -> None:
    values = {"session_id": "a", "p_t": f"turn|{turn}||next|verified:1"}
    with pytest.raises(MalformedRequest):
        ifbyphone.parse(values, max_length=10_000)
    # Read for the fallback all the same, without the counter.
    assert ifbyphone.parse_pass_through(values) == {"next": "verified:1"}


def test_fields_glue_does_not_read_are_kept_whatever_their_length() -> None:
    """Which answers a flow reads is the runner's to check: parse refuses none."""
    values = {
        "session_id": "a",
        "p_t": "turn|999999999",
        "account": "1" * 300,
        "campaign": "c" * 5000,
        "x" * 300: "1",
    }
    turn = ifbyphone.parse(values, max_length=256)
    assert dict(turn.fields) == values
    assert turn.answers["campaign"] == "c" * 5000
    assert dict(turn.pass_through) == {"turn": "999999999"}


def test_pass_through_round_trips_and_ignores_garbage() -> None:
    assert ifbyphone.decode_pass_through("a|1||b|2|x") == {"a": "1", "b": "2|x"}
    assert ifbyphone.decode_pass_through("junk||||") == {}
    assert ifbyphone.encode_pass_through({"a": "1", "b": "2"}) == "a|1||b|2"


def test_pass_through_after_merged_messages_points_past_them() -> None:
    steps = [Pause(1), RunForm("4200"), Hangup()]
    root = parse_action(ifbyphone.render(steps, {"survo": "4101"}, Cursor("verified", 2, 0)).body)
    # No say_survo: the pause is skipped, the form runs, and resumes after itself.
    assert root.findtext("parameters/id") == "4200"
    assert "next|verified:4" in (root.findtext("parameters/p_t") or "")


def test_a_sound_has_no_building_block_and_is_passed_over() -> None:
    from app.neutral.steps import Play

    rendered = ifbyphone.render([Say("Hello"), Play("welcome"), Hangup()], BLOCK, CURSOR)
    assert rendered.consumed == 2
    assert parse_action(rendered.body).findtext("parameters/user_parameters/message") == "Hello"
