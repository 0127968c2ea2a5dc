"""What a check reads of the directory: the claimed record, as stored.

A check runs on every verification step of every call, where loading ORM
objects (identity map, refresh of what the session holds) costs more than the
database's read. These statements are run on the driver (app/db/driver.py) and
give plain, read-only `Record`s: a user, group or unknown claim with the
columns a check needs, whose counters are changed by UPDATE statements, never
through the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select

from app.db.driver import DriverStatement
from app.models import Group, Membership, PhoneNumber, UnknownClaim, User

USERS = cast(Table, User.__table__)
GROUPS = cast(Table, Group.__table__)
PHONES = cast(Table, PhoneNumber.__table__)
UNKNOWN = cast(Table, UnknownClaim.__table__)

Model = type[User] | type[Group] | type[UnknownClaim]


@dataclass(frozen=True, slots=True)
class Record:
    """A claimed record as a check read it; `model` names its table. An unknown
    claim has no owner's counters, a user or group has no claim."""

    model: Model
    id: int
    number: str  # account or group number, or what an unknown claim claimed
    name: str
    pin_hash: str | None
    active: bool
    failed_attempts: int
    lockouts: int
    locked_until: datetime | None
    owner_failed_attempts: int = 0
    owner_lockouts: int = 0
    owner_locked_until: datetime | None = None

    @property
    def is_user(self) -> bool:
        return self.model is User

    @property
    def is_group(self) -> bool:
        return self.model is Group


# A record's failure counts: of attempts from elsewhere, then from its own
# phones (an unknown claim has the first three only).
COUNTERS = (
    "failed_attempts",
    "lockouts",
    "locked_until",
    "owner_failed_attempts",
    "owner_lockouts",
    "owner_locked_until",
)


def _user_with_phones(*where: Any) -> DriverStatement:
    """A user with its phones, a row per phone in the order they were added: one
    statement, where a second for the phones would cost a round trip on every
    check. Locked FOR NO KEY UPDATE (SQLite's write lock does it there), so rows
    that merely refer to the user (a new attempt, phone or action) are not held up."""
    columns = [USERS.c[name] for name in ("id", "account_number", "name", "pin_hash", "active")]
    counters = [USERS.c[name] for name in COUNTERS]
    return DriverStatement(
        select(*columns, *counters, PHONES.c.e164)
        .select_from(USERS.outerjoin(PHONES, PHONES.c.user_id == USERS.c.id))
        .where(*where)
        .order_by(PHONES.c.id)
        .with_for_update(of=USERS, key_share=True)
    )


USER_BY_ACCOUNT = _user_with_phones(USERS.c.account_number == bindparam("claimed"))
USER_BY_ID = _user_with_phones(USERS.c.id == bindparam("user"))


def _group_where(*where: Any) -> DriverStatement:
    columns = [GROUPS.c[name] for name in ("id", "group_number", "name", "pin_hash", "active")]
    counters = [GROUPS.c[name] for name in COUNTERS]
    return DriverStatement(
        select(*columns, *counters).where(*where).with_for_update(key_share=True)
    )


GROUP_BY_NUMBER = _group_where(GROUPS.c.group_number == bindparam("claimed"))
GROUP_BY_ID = _group_where(GROUPS.c.id == bindparam("group"))
PHONE_OWNER = DriverStatement(
    select(PHONES.c.user_id, PHONES.c.group_id).where(PHONES.c.e164 == bindparam("e164"))
)
UNKNOWN_CLAIM = DriverStatement(
    select(UNKNOWN.c.id, *(UNKNOWN.c[name] for name in COUNTERS[:3])).where(
        UNKNOWN.c.claim_type == bindparam("claim_type"), UNKNOWN.c.claimed == bindparam("claimed")
    )
)
# Phones a group owns, its members' included: for "is this call from the owner?".
GROUP_PHONE = DriverStatement(
    select(PHONES.c.id).where(
        PHONES.c.e164 == bindparam("e164"),
        (PHONES.c.group_id == bindparam("group"))
        | PHONES.c.user_id.in_(
            select(Membership.user_id).where(Membership.group_id == bindparam("group"))
        ),
    )
)


def user_by_account(connection: Connection, account: str) -> tuple[Record, tuple[str, ...]] | None:
    """The user with this account number and its phones, locked; None if none."""
    return _user(USER_BY_ACCOUNT.rows(connection, {"claimed": account}))


def user_by_id(connection: Connection, user_id: int) -> tuple[Record, tuple[str, ...]] | None:
    return _user(USER_BY_ID.rows(connection, {"user": user_id}))


def group_by_number(connection: Connection, number: str) -> Record | None:
    """The group with this number, locked; None if none."""
    return _group_record(GROUP_BY_NUMBER.rows(connection, {"claimed": number}))


def group_by_id(connection: Connection, group_id: int) -> Record | None:
    return _group_record(GROUP_BY_ID.rows(connection, {"group": group_id}))


def phone_owner(connection: Connection, e164: str) -> tuple[int | None, int | None] | None:
    """(user id, group id) of the phone with this number; None if none is stored."""
    rows = PHONE_OWNER.rows(connection, {"e164": e164})
    return (rows[0].user_id, rows[0].group_id) if rows else None


def group_owns_phone(connection: Connection, group_id: int, e164: str) -> bool:
    """Whether the number is the group's own phone or one of its members'."""
    return bool(GROUP_PHONE.rows(connection, {"group": group_id, "e164": e164}))


def unknown_claim(connection: Connection, claim_type: str, claimed: str) -> Record | None:
    rows = UNKNOWN_CLAIM.rows(connection, {"claim_type": claim_type, "claimed": claimed})
    if not rows:
        return None
    row = rows[0]
    return Record(
        UnknownClaim,
        row.id,
        claimed,
        "",
        None,
        False,
        *(row[1:4]),  # its three counters
    )


def record_of(found: User | Group) -> Record:
    """A user or group the ORM loaded, as a check reads it."""
    number = found.account_number if isinstance(found, User) else found.group_number
    counters = (getattr(found, name) for name in COUNTERS)
    return Record(
        type(found), found.id, number, found.name, found.pin_hash, found.active, *counters
    )


def _user(rows: Sequence[Any]) -> tuple[Record, tuple[str, ...]] | None:
    if not rows:
        return None
    first = rows[0]
    record = Record(User, *first[:-1])
    return record, tuple(row.e164 for row in rows if row.e164 is not None)


def _group_record(rows: Sequence[Any]) -> Record | None:
    return Record(Group, *rows[0]) if rows else None
