"""The admin lists (calls, verification attempts, locks), filtered: what an
admin searched for and chose, as statements a page shows a page of and a CSV
export streams in full.

They never commit, and read lockout counters as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from app.admin.overview import NO_OUTCOME
from app.admin.service import FRESH, PER_PAGE, Locks, Page
from app.models import Call, Group, UnknownClaim, User, VerificationAttempt, utcnow

T = TypeVar("T")


@dataclass(frozen=True)
class Filters:
    """What an admin asked a list for; empty: anything. Times are naive UTC,
    `until` excluded."""

    q: str = ""  # caller number, account or group number, name
    flow: str = ""
    outcome: str = ""
    platform: str = ""
    claim_type: str = ""
    kind: str = ""  # locks: user, group, unknown
    since: datetime | None = None
    until: datetime | None = None


def page_of(session: Session, stmt: Select[T], number: int) -> Page[T]:
    """Page `number` (1-based; past the last: the last) of a statement's rows."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    number = min(max(1, number), max(1, ceil(total / PER_PAGE)))
    items = list(session.scalars(stmt.limit(PER_PAGE).offset((number - 1) * PER_PAGE)))
    return Page(items, number, total)


def _digits(text: str) -> str:
    """A number as typed ((312) 555-0101) in the digits it is stored with."""
    return "".join(ch for ch in text if ch.isascii() and ch.isdigit())


def _number_matches(column: Any, q: str) -> ColumnElement[bool]:
    digits = _digits(q)
    terms = [column.contains(q, autoescape=True)]
    if digits and digits != q:
        terms.append(column.contains(digits, autoescape=True))
    return or_(*terms)


def _people(q: str) -> Select[int]:
    """The users whose account number is `q` or whose name holds it."""
    return select(User.id).where(
        or_(User.account_number == q, User.name.icontains(q, autoescape=True))
    )


def _between(column: Any, filters: Filters) -> list[ColumnElement[bool]]:
    found = []
    if filters.since is not None:
        found.append(column >= filters.since)
    if filters.until is not None:
        found.append(column < filters.until)
    return found


def calls(filters: Filters) -> Select[Call]:
    """Calls, newest first. `q` finds a caller's number, a call id, and the
    calls in which an account or group was claimed, or a user of that name."""
    where: list[ColumnElement[bool]] = _between(Call.started_at, filters)
    if filters.q:
        claimed = exists().where(
            VerificationAttempt.call_id == Call.id,
            or_(
                VerificationAttempt.claimed == filters.q,
                VerificationAttempt.user_id.in_(_people(filters.q)),
            ),
        )
        where.append(
            or_(
                _number_matches(Call.caller_number, filters.q),
                Call.platform_call_id == filters.q,
                claimed,
            )
        )
    if filters.flow:
        where.append(Call.flow == filters.flow)
    if filters.platform:
        where.append(Call.platform == filters.platform)
    if filters.outcome == NO_OUTCOME:
        where.append(Call.outcome.is_(None))
    elif filters.outcome:
        where.append(Call.outcome == filters.outcome)
    return select(Call).where(*where).order_by(Call.started_at.desc(), Call.id.desc())


def attempts(filters: Filters) -> Select[VerificationAttempt]:
    """Verification attempts, newest first. `q` finds what was claimed, the
    user of an account number or name, and the caller's number."""
    where: list[ColumnElement[bool]] = _between(VerificationAttempt.created_at, filters)
    if filters.q:
        where.append(
            or_(
                _number_matches(VerificationAttempt.claimed, filters.q),
                VerificationAttempt.user_id.in_(_people(filters.q)),
                _number_matches(Call.caller_number, filters.q),
            )
        )
    if filters.outcome:
        where.append(VerificationAttempt.outcome == filters.outcome)
    if filters.claim_type:
        where.append(VerificationAttempt.claim_type == filters.claim_type)
    if filters.flow:
        where.append(Call.flow == filters.flow)
    if filters.platform:
        where.append(Call.platform == filters.platform)
    return (
        select(VerificationAttempt)
        .outerjoin(Call, Call.id == VerificationAttempt.call_id)
        .where(*where)
        .order_by(VerificationAttempt.created_at.desc(), VerificationAttempt.id.desc())
    )


def _locked_or_failed(model: type[User] | type[Group], now: datetime) -> ColumnElement[bool]:
    return or_(
        model.locked_until > now,
        model.failed_attempts > 0,
        model.owner_locked_until > now,
        model.owner_failed_attempts > 0,
    )


def lock_statements(filters: Filters, now: datetime) -> dict[str, Select[Any]]:
    """For each kind of record a filter lets through: its locked ones and
    those with failed attempts (unknown claims: locked now), in number order.
    `q` finds a number or a name; `since`/`until` bound when a lock ends."""
    q = filters.q
    users = select(User).where(_locked_or_failed(User, now)).order_by(User.account_number)
    groups = select(Group).where(_locked_or_failed(Group, now)).order_by(Group.group_number)
    unknown = (
        select(UnknownClaim)
        .where(UnknownClaim.locked_until > now)
        .order_by(UnknownClaim.claim_type, UnknownClaim.claimed)
    )
    if q:
        users = users.where(
            or_(_number_matches(User.account_number, q), User.name.icontains(q, autoescape=True))
        )
        groups = groups.where(
            or_(_number_matches(Group.group_number, q), Group.name.icontains(q, autoescape=True))
        )
        unknown = unknown.where(_number_matches(UnknownClaim.claimed, q))
    if filters.since or filters.until:
        users = users.where(or_(*_lock_ends(User, filters)))
        groups = groups.where(or_(*_lock_ends(Group, filters)))
        unknown = unknown.where(and_(*_between(UnknownClaim.locked_until, filters)))
    chosen = {"user": users, "group": groups, "unknown": unknown}
    return {
        kind: stmt.execution_options(**FRESH)
        for kind, stmt in chosen.items()
        if filters.kind in ("", kind)
    }


def _lock_ends(model: type[User] | type[Group], filters: Filters) -> list[ColumnElement[bool]]:
    return [
        and_(*_between(model.locked_until, filters)),
        and_(*_between(model.owner_locked_until, filters)),
    ]


@dataclass(frozen=True)
class LockPage:
    locks: Locks
    number: int
    pages: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def locks(session: Session, filters: Filters, number: int) -> LockPage:
    """Page `number` of each kind's locks: the kinds are paged side by side."""
    now = utcnow()
    pages = {
        kind: page_of(session, stmt, number) for kind, stmt in lock_statements(filters, now).items()
    }
    last = max((page.pages for page in pages.values()), default=1)
    number = min(max(1, number), last)
    shown = {kind: page.items if page.number == number else [] for kind, page in pages.items()}
    found = Locks(
        users=shown.get("user", []),
        groups=shown.get("group", []),
        unknown=shown.get("unknown", []),
        now=now,
    )
    return LockPage(found, number, last, sum(page.total for page in pages.values()))
