"""Checks a caller's claimed identity and PIN against the directory.

Runs inside the caller's transaction, on its connection, and never commits. Failures are counted
against what was claimed: the user or group, or (when the claim matches no
record) the claim itself, so unknown accounts lock exactly like real ones and
lockout reveals nothing. Attempts made from one of the record's own phones are
counted apart (see OwnerLockoutMixin): a stranger's failures lock strangers out,
never the owner calling from home, so locking a whole directory buys an
attacker nothing but their own lockouts. Each count is one conditional UPDATE, so concurrent
wrong PINs on any number of workers or hosts each count, and an account locked
by one of them is not counted past its threshold by the others.

A check made for one known user (a verification call Glue placed to that user,
see app/verification/call_link.py) verifies that user only: a claim naming
anyone else is a failed attempt of that user, counted like a wrong PIN, and the
record it names is neither read nor counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db import begin_write
from app.db.driver import DriverStatement
from app.directory.pins import PinHasher
from app.models import (
    Membership,
    PhoneNumber,
    UnknownClaim,
    User,
    VerificationAttempt,
    utcnow,
)
from app.neutral.phones import try_e164
from app.verification import records
from app.verification.lockout import LockoutPolicy
from app.verification.records import Model, Record
from app.verification.types import Claim, Subject, Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counters:
    """The columns that count an attempt's failures."""

    failed: str
    lockouts: str
    locked_until: str

    def column(self, model: Model, name: str) -> Any:
        return getattr(model, getattr(self, name))

    def value(self, record: Record, name: str) -> Any:
        return getattr(record, getattr(self, name))


ELSEWHERE = Counters("failed_attempts", "lockouts", "locked_until")
OWN_PHONE = Counters("owner_failed_attempts", "owner_lockouts", "owner_locked_until")
STORE_ATTEMPT = DriverStatement(
    insert(VerificationAttempt)
    .values(
        {
            name: bindparam(name, type_=VerificationAttempt.__table__.c[name].type)
            for name in (
                "call_id",
                "claim_type",
                "claimed",
                "user_id",
                "group_id",
                "member_user_id",
                "outcome",
                "reason",
                "created_at",
            )
        }
    )
    .inline()  # its id is not read back
)


class Member(Protocol):
    """A group's member as a check reads it: a row of `active_members`."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def pin_hash(self) -> str: ...


class Verifier:
    def __init__(
        self,
        connection: Connection,
        hasher: PinHasher,
        policy: LockoutPolicy,
        region: str = "US",
    ) -> None:
        self.connection = connection
        self.hasher = hasher
        self.policy = policy
        self.region = region

    def verify(
        self,
        claim: Claim,
        pin: str,
        call_id: int | None = None,
        caller: str | None = None,
        for_user: int | None = None,
    ) -> Verdict:
        """Check `pin` for the claimed record and record the attempt.

        `caller` is the number the call comes from, as the platform sent it.
        `for_user`: the check is made for this user only (a verification call
        placed to them): a claim naming anyone else fails as theirs.
        """
        begin_write(self.connection)  # it reads the record, then counts the attempt
        now = utcnow()
        if for_user is None:
            record, phones = self._find(claim)
            other = False
        else:
            record, phones = self._find_intended(for_user)
            if record is None:  # gone since the call was placed: nobody to verify
                self.hasher.verify(pin, self.hasher.decoy)
                verdict = Verdict("rejected", "unknown")
                self._record(claim, None, verdict, call_id)
                return verdict
            other = not self._names(claim, record, phones)
        counted = record if record is not None else self._unknown_claim(claim)
        counters = (
            OWN_PHONE
            if record is not None and self._from_own_phone(claim, record, caller, phones, other)
            else ELSEWHERE
        )
        if _locked(counted, now, counters):
            verdict = Verdict("locked", "locked")  # refused without looking at the PIN
        elif other:
            # The same work as a real check: the caller learns nothing from the time.
            assert record is not None and record.is_user
            self.hasher.verify(pin, self.hasher.decoy)
            # What was claimed is the attempt's row (`claimed`), never a log line.
            log.warning(
                "call %s: a check made for user %s claimed another %s: counted as a failure",
                call_id,
                record.id,
                claim.kind,
            )
            verdict = self._fail(record, now, "other_account", counters)
        elif record is None or not record.active:
            # Spend the same work as a real check: unknown and wrong look alike.
            self.hasher.verify(pin, self.hasher.decoy)
            reason = "unknown" if record is None else "inactive"
            verdict = self._fail(counted, now, reason, counters)
        else:
            verdict = self._check_pin(record, pin, now, counters, phones)
        self._record(claim, record, verdict, call_id)
        return verdict

    def _from_own_phone(
        self,
        claim: Claim,
        record: Record,
        caller: str | None,
        phones: tuple[str, ...] | None,
        other: bool = False,
    ) -> bool:
        """Whether the call comes from one of the record's phones (a group's own
        or its members'). A claim by caller ID was found by that very phone,
        unless the record is not what it claimed (`other`). `phones` are a
        user's own, already loaded."""
        if claim.kind == "caller_id" and not other:
            return True
        e164 = try_e164(caller, self.region) if caller else None
        if e164 is None:
            return False
        if phones is not None:
            return e164 in phones
        assert record.is_group  # a user is always read with its phones
        return records.group_owns_phone(self.connection, record.id, e164)

    def _find_intended(self, user_id: int) -> tuple[Record | None, tuple[str, ...] | None]:
        """The user a check is made for, and their phones, locked as `_find` does."""
        found = records.user_by_id(self.connection, user_id)
        return found if found is not None else (None, None)

    def _names(self, claim: Claim, user: Record, phones: tuple[str, ...] | None) -> bool:
        """Whether `claim` names `user`: their account number, or (by caller ID)
        one of their phones. A group claim never names a user."""
        if claim.kind == "account":
            return claim.value == user.number
        if claim.kind == "caller_id":
            return try_e164(claim.value, self.region) in (phones or ())
        return False

    def _find(self, claim: Claim) -> tuple[Record | None, tuple[str, ...] | None]:
        """The claimed record and, for a user, its phones. The record is locked
        until the attempt commits: its counters as read stay true until then
        (SQLite's write lock does it there). On PostgreSQL, after waiting for
        that lock, the user is read again but its phones are as they were when
        the statement began: a phone added or removed in that instant can count
        one attempt as from elsewhere, or from the owner's phone."""
        connection = self.connection
        if claim.kind == "account":
            found = records.user_by_account(connection, claim.value)
            return found if found is not None else (None, None)
        if claim.kind == "group":
            return records.group_by_number(connection, claim.value), None
        e164 = try_e164(claim.value, self.region)
        owner = records.phone_owner(connection, e164) if e164 is not None else None
        if owner is None:
            return None, None
        user_id, group_id = owner
        if user_id is not None:
            found = records.user_by_id(connection, user_id)
            return found if found is not None else (None, None)
        if group_id is not None:
            return records.group_by_id(connection, group_id), None
        return None, None

    def _unknown_claim(self, claim: Claim) -> Record:
        """The counter row of a claim matching no record, created on first use."""
        kind, claimed = claim.kind, claim.value[:64]
        dialect = self.connection.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self.connection.execute(
            insert(UnknownClaim)
            .values(claim_type=kind, claimed=claimed, created_at=utcnow())
            .on_conflict_do_nothing()
        )
        found = records.unknown_claim(self.connection, kind, claimed)
        assert found is not None  # inserted just now, or there already
        return found

    def _check_pin(
        self,
        record: Record,
        pin: str,
        now: datetime,
        counters: Counters,
        phones: tuple[str, ...] | None,
    ) -> Verdict:
        members = active_members(self.connection, record) if record.is_group else []
        opened = pin_opens(self.hasher, record, pin, members)
        if opened is None:
            return self._fail(record, now, "wrong_pin", counters)
        reason, member = opened
        return self._succeed(record, now, counters, reason, member, phones)

    def _succeed(
        self,
        record: Record,
        now: datetime,
        counters: Counters,
        reason: str,
        member: Member | None = None,
        phones: tuple[str, ...] | None = None,
    ) -> Verdict:
        model = record.model
        # The record is locked and was read as stored (see _find): clean
        # counters need no write, the common case.
        if any(counters.value(record, name) for name in ("failed", "lockouts", "locked_until")):
            # Only while unlocked: a concurrent attempt may have locked it meanwhile.
            reset = self.connection.execute(
                update(model)
                .where(model.id == record.id, _unlocked(model, now, counters))
                .values({counters.failed: 0, counters.lockouts: 0, counters.locked_until: None})
                .returning(model.id)
            ).one_or_none()
            if reset is None:
                return Verdict("locked", "locked")
        subject = subject_of(self.connection, record, phones, member)
        return Verdict("verified", reason, subject, member.id if member else None)

    def _fail(self, counted: Record, now: datetime, reason: str, counters: Counters) -> Verdict:
        """Count one failure; lock once the threshold is reached."""
        model = counted.model
        failed = counters.column(model, "failed")
        # The row lock taken by this UPDATE orders concurrent attempts, and each
        # sees the count the previous one left.
        row = self.connection.execute(
            update(model)
            .where(model.id == counted.id, _unlocked(model, now, counters))
            .values({counters.failed: failed + 1})
            .returning(failed, counters.column(model, "lockouts"))
        ).one_or_none()
        if row is None:
            return Verdict("locked", "locked")  # another attempt locked it meanwhile
        failures, lockouts = row
        if failures < self.policy.threshold:
            return Verdict("rejected", reason)
        self.connection.execute(
            update(model)
            .where(model.id == counted.id)
            .values(
                {
                    counters.failed: 0,
                    counters.lockouts: lockouts + 1,
                    counters.locked_until: now + timedelta(seconds=self.policy.duration(lockouts)),
                }
            )
        )
        return Verdict("locked", "locked_now")

    def _record(
        self,
        claim: Claim,
        record: Record | None,
        verdict: Verdict,
        call_id: int | None,
    ) -> None:
        STORE_ATTEMPT.rows(
            self.connection,
            {
                "call_id": call_id,
                "claim_type": claim.kind,
                "claimed": claim.value[:64],
                "user_id": record.id if record is not None and record.is_user else None,
                "group_id": record.id if record is not None and record.is_group else None,
                "member_user_id": verdict.member_id,
                "outcome": verdict.outcome,
                "reason": verdict.reason,
                "created_at": utcnow(),
            },
        )


def pin_opens(
    hasher: PinHasher, record: Record, pin: str, members: Sequence[Member]
) -> tuple[str, Member | None] | None:
    """How `pin` opens the record: its own PIN ("pin"), or for a group, the PIN
    of one of its active `members` ("member_pin", that member); None if neither."""
    if record.is_user:
        return ("pin", None) if hasher.verify(pin, record.pin_hash or "") else None
    group_pin = bool(record.pin_hash) and hasher.verify(pin, record.pin_hash or "")
    # Every member's PIN is checked, matched or not: the time taken must not
    # tell which member (if any) has this PIN.
    matched = [m for m in members if hasher.verify(pin, m.pin_hash)]
    if group_pin:
        return "pin", None
    return ("member_pin", matched[0]) if matched else None


def active_members(connection: Connection, group: Record) -> list[Member]:
    return list(
        connection.execute(
            select(User.id, User.name, User.pin_hash)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.group_id == group.id, User.active.is_(True))
            .order_by(User.id)
        )
    )


def subject_of(
    connection: Connection,
    record: Record,
    phones: tuple[str, ...] | None = None,
    member: Member | None = None,
) -> Subject:
    """The verified record as flows speak of it; its phones read unless given."""
    if phones is None:
        owner = PhoneNumber.user_id if record.is_user else PhoneNumber.group_id
        phones = tuple(
            connection.scalars(
                select(PhoneNumber.e164).where(owner == record.id).order_by(PhoneNumber.id)
            )
        )
    return Subject(
        kind="user" if record.is_user else "group",
        id=record.id,
        number=record.number,
        name=record.name,
        phones=phones,
        member=member.name if member else None,
    )


def _unlocked(model: Model, now: datetime, counters: Counters) -> ColumnElement[bool]:
    until = counters.column(model, "locked_until")
    return or_(until.is_(None), until <= now)


def _locked(counted: Record, now: datetime, counters: Counters) -> bool:
    until = counters.value(counted, "locked_until")
    return until is not None and bool(until > now)
