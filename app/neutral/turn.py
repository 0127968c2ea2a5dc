"""The neutral turn a request parses into, and the bounded readers that parse it:
shared by every dialect and by whatever else reads a platform's fields."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL; SQLite's is larger

# Longest platform call id kept (the column's size); a longer one is malformed.
MAX_CALL_ID = 128
# Largest counter read from a request (a turn, a step's position in an outcome):
# nine digits, far more than any call takes.
MAX_COUNTER = 999_999_999


class MalformedRequest(ValueError):
    """A platform request that cannot be read as a turn of a call."""


def check_lengths(values: Mapping[str, str], read: Iterable[str], max_length: int) -> None:
    """Refuse a request any of whose fields Glue reads (`read`) is longer than allowed.

    Only those: a platform sends fields Glue never reads (Twilio's `CallToken`
    runs to well over a thousand characters), and they are kept, capped, with
    the request's event, never a reason to refuse it.
    """
    for name in read:
        if len(values.get(name, "")) > max_length:
            raise MalformedRequest(f"field {name[:32]!r} longer than {max_length}")


def capped(text: str, max_length: int) -> str:
    """`text` cut to `max_length` characters, saying how many were cut."""
    if len(text) <= max_length:
        return text
    return f"{text[:max_length]}…[truncated {len(text) - max_length} chars]"


def read_number(text: str, maximum: int) -> int | None:
    """`text` as a number from 0 to `maximum`, else None.

    Only ASCII digits, at most as many as `maximum` has: `int()` and
    `str.isdigit()` also take `²` and Arabic-Indic digits, and `int()` raises
    past 4,300 digits.
    """
    digits = len(str(maximum))
    if re.fullmatch(f"[0-9]{{1,{digits}}}", text, re.ASCII) is None:
        return None
    number = int(text)
    return number if number <= maximum else None


@dataclass(frozen=True)
class Turn:
    """One platform request, in neutral terms."""

    platform: str
    call_id: str  # the platform's id for the call
    caller: str | None  # the caller's number as sent
    # What may answer the flow's questions (on IfbyPhone and VoipNow, every field
    # that is not the platform's own): the flow's questions say which are read.
    answers: Mapping[str, str]
    pass_through: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)  # everything received
    # The request field that carried each answer, where it is not the question's
    # own name (a `<Gather>` answer arrives in `Digits`): masked when secret.
    answer_fields: Mapping[str, str] = field(default_factory=dict)
