"""What every dialect shares in reading a request: numbers, lengths, caps (pure)."""

from __future__ import annotations

import pytest

from app.neutral.turn import MalformedRequest, capped, check_lengths, read_number

MAX_ID = 2**31 - 1


@pytest.mark.parametrize(
    ("text", "maximum", "number"),
    [
        ("0", 9, 0),
        ("7", 9, 7),
        ("007", 999, 7),
        ("999999999", 999_999_999, 999_999_999),
        ("2147483647", MAX_ID, MAX_ID),
    ],
)
def test_ascii_digits_within_the_bound_are_a_number(text: str, maximum: int, number: int) -> None:
    assert read_number(text, maximum) == number


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "1\n",
        "+1",
        "-1",
        "1.0",
        "1e3",
        "0x10",
        "1_000",
        "\u00b2",  # superscript two: str.isdigit() says yes, int() raises
        "\u0661\u0662",  # Arabic-Indic 12: int() reads it
        "\uff11",  # full-width 1
        "\u09e7",  # Bengali 1
        "2147483648",  # one past INTEGER
        "0" * 11,  # within the value, past its digits
        "9" * 5000,  # int() raises past 4,300 digits
    ],
)
def test_anything_else_is_no_number(text: str) -> None:
    assert read_number(text, MAX_ID) is None


def test_capped_values_say_how_much_was_cut() -> None:
    assert capped("abc", 3) == "abc"
    assert capped("abcdef", 3) == "abc…[truncated 3 chars]"
    assert capped("x" * 1500, 256) == "x" * 256 + "…[truncated 1244 chars]"


def test_only_the_fields_read_are_checked_for_length() -> None:
    values = {"CallSid": "CA1", "CallToken": "t" * 5000}
    check_lengths(values, ["CallSid", "absent"], 256)
    with pytest.raises(MalformedRequest):
        check_lengths(values, ["CallSid", "CallToken"], 256)
