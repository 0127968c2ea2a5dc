"""What every dialect shares: where rendering starts, a reply, and the Dialect protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from marshmallow import Schema

from app.neutral.steps import Step
from app.neutral.turn import Turn


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

    @property
    def NAME(self) -> str: ...

    @property
    def CONTENT_TYPE(self) -> str: ...

    @property
    def PLATFORM_FIELDS(self) -> frozenset[str]:
        """The platform's own fields: the rest are answers."""

    @property
    def VOLATILE_FIELDS(self) -> frozenset[str]:
        """Fields that differ between retries of one delivery."""

    @property
    def ONE_BY_ONE(self) -> bool:
        """True where Glue asks the questions itself, one per request (`<Gather>`);
        False where the platform's own form sends all answers at once."""

    @property
    def NEEDS_SETTINGS(self) -> bool:
        """A flow must have this platform's block to run on it."""

    @property
    def SETTINGS(self) -> type[Schema]:
        """The marshmallow schema of the flow's block for this platform."""

    def check_flow(
        self,
        block: Any,
        raw_on: Mapping[str, Any],
        outcomes: Mapping[str, Sequence[Step | None]],
        errors: dict[Any, Any],
    ) -> None:
        """Add to `errors` what the flow's steps need from the block and it lacks."""

    def parse(self, values: Mapping[str, str], max_length: int) -> Turn: ...

    def parse_pass_through(self, values: Mapping[str, str]) -> dict[str, str]: ...

    def render(
        self, steps: Sequence[Step], block: Mapping[str, Any], cursor: Cursor
    ) -> Rendered: ...

    def render_hangup(self) -> bytes: ...
