"""TwiML / didML request parsing (pure): the fields Glue reads are checked, the
rest are kept as sent."""

from __future__ import annotations

import json

import pytest

from app.dialects.didml import DIDML
from app.dialects.twiml import TWIML, VoiceXml
from app.neutral.turn import MalformedRequest

CALL_TOKEN = json.dumps(
    {
        "parentCallInfoToken": "eyJhbGciOiJFUzI1NiJ9." + "x" * 1200,
        "identityHeaderTokens": ["eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiJ9." + "y" * 400],
    }
)


@pytest.mark.parametrize("dialect", [TWIML, DIDML], ids=["twiml", "didml"])
def test_fields_glue_does_not_read_are_kept_whatever_their_length(dialect: VoiceXml) -> None:
    assert len(CALL_TOKEN) >= 1500
    values = {
        dialect.call_id_fields[0]: "CA1",
        "From": "+13125550199",
        "CallToken": CALL_TOKEN,
        "AddOns": json.dumps({"status": "successful", "results": {"x": "r" * 3000}}),
        "SpeechResult": "s" * 2000,
        "x" * 300: "1",
    }
    turn = dialect.parse(values, max_length=256)
    assert (turn.call_id, turn.caller, dict(turn.fields)) == ("CA1", "+13125550199", values)


@pytest.mark.parametrize(
    "extra",
    [
        {"From": "+1" * 200},
        {"question": "q" * 300},
        {"turn": "9" * 5000},
        {"turn": "9" * 10},
        {"turn": "\u00b2"},
        {"turn": "\u0661\u0662"},
        {"turn": "-1"},
        {"turn": "1e3"},
    ],
)
def test_a_field_glue_reads_that_is_too_long_or_no_number_is_malformed(
    extra: dict[str, str],
) -> None:
    with pytest.raises(MalformedRequest):
        TWIML.parse({"CallSid": "CA1", **extra}, max_length=256)
    assert TWIML.parse_pass_through({"CallSid": "CA1", **extra}) == {}


def test_a_turn_of_nine_ascii_digits_is_read() -> None:
    turn = TWIML.parse({"CallSid": "CA1", "turn": "999999999"}, max_length=256)
    assert dict(turn.pass_through) == {"turn": "999999999"}
