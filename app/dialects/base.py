"""What every dialect shares: the neutral turn a request parses into, and a reply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.dialects.steps import Step

# Longest platform call id kept (the column's size); a longer one is malformed.
MAX_CALL_ID = 128


class MalformedRequest(ValueError):
    """A platform request that cannot be read as a turn of a call."""


@dataclass(frozen=True)
class Turn:
    """One platform request, in neutral terms."""

    platform: str
    call_id: str  # the platform's id for the call
    caller: str | None  # the caller's number as sent
    answers: Mapping[str, str]  # every field that is not the platform's own
    pass_through: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)  # everything received


@dataclass(frozen=True)
class Cursor:
    """Where the steps being rendered start: carried to the next request by dialects
    that can (IfbyPhone's p_t), as a mirror of the state kept in the database."""

    outcome: str
    index: int
    turn: int
    url: str = ""  # where the platform should send the call's next request


@dataclass(frozen=True)
class Rendered:
    body: bytes
    consumed: int  # how many of the given steps this reply carries


class Dialect(Protocol):
    """What a platform module provides (see app/dialects/ifbyphone.py)."""

    NAME: str
    CONTENT_TYPE: str
    PLATFORM_FIELDS: frozenset[str]  # the platform's own fields: the rest are answers
    VOLATILE_FIELDS: frozenset[str]  # differ between retries of one delivery

    def parse(self, values: Mapping[str, str], max_length: int) -> Turn: ...

    def parse_pass_through(self, values: Mapping[str, str]) -> dict[str, str]: ...

    def render(
        self, steps: Sequence[Step], block: Mapping[str, str], cursor: Cursor
    ) -> Rendered: ...

    def render_hangup(self) -> bytes: ...
