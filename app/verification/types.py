"""The verification vocabulary: what a caller claims and what the check found.

Plain data, shared by the (pure) flow engine and the verification service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ClaimKind = Literal["account", "group", "caller_id"]
Outcome = Literal["verified", "rejected", "locked"]


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    value: str  # account number, group number, or the caller's number


@dataclass(frozen=True)
class Subject:
    """The verified record, as flows may speak of it."""

    kind: Literal["user", "group"]
    id: int
    number: str
    name: str
    phones: tuple[str, ...] = ()  # E.164, first is the main one
    member: str | None = None  # group opened by a member's PIN: the member's name

    def fields(self) -> dict[str, str]:
        """Values a flow message may use as {field}."""
        values = {"name": self.name, "number": self.number}
        if self.kind == "user":
            values["account"] = self.number
        else:
            values["group"] = self.number
            values["member"] = self.member or ""
        return values


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    # pin, member_pin, wrong_pin, unknown, inactive, locked, locked_now, and
    # other_account: a check made for one user claimed someone else
    reason: str
    subject: Subject | None = None
    member_id: int | None = None  # the member whose PIN opened a group
