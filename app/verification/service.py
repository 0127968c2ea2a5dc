"""Checks a caller's claimed identity and PIN against the directory.

Runs inside the caller's transaction and never commits. Failure counting is a
single conditional UPDATE per attempt, so concurrent wrong PINs (on any number of
workers or hosts sharing PostgreSQL) each count, and an account locked by one of
them is not counted past its threshold by the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.directory.phones import try_e164
from app.directory.pins import PinHasher
from app.models import Group, Membership, PhoneNumber, User, VerificationAttempt, utcnow
from app.verification.lockout import LockoutPolicy

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
    member: str | None = None  # group verified by a member's PIN: the member's name

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
    reason: str  # pin, member_pin, wrong_pin, unknown, inactive, locked, locked_now
    subject: Subject | None = field(default=None)
    member_id: int | None = None  # the member whose PIN opened a group


class Verifier:
    def __init__(
        self,
        session: Session,
        hasher: PinHasher,
        policy: LockoutPolicy,
        region: str = "US",
    ) -> None:
        self.session = session
        self.hasher = hasher
        self.policy = policy
        self.region = region

    def verify(self, claim: Claim, pin: str, call_id: int | None = None) -> Verdict:
        """Check `pin` for the claimed record and record the attempt."""
        begin_write(self.session)  # it reads the record, then counts the attempt
        now = utcnow()
        record = self._find(claim)
        if record is None or not record.active:
            # Spend the same work as a real check: unknown and wrong look alike.
            self.hasher.verify(pin, self.hasher.decoy)
            reason = "unknown" if record is None else "inactive"
            verdict = Verdict("rejected", reason)
        elif record.locked_until is not None and record.locked_until > now:
            verdict = Verdict("locked", "locked")  # refused without looking at the PIN
        else:
            verdict = self._check_pin(record, pin, now)
        self._record(claim, record, verdict, call_id)
        return verdict

    def _find(self, claim: Claim) -> User | Group | None:
        if claim.kind == "account":
            return self.session.scalar(select(User).where(User.account_number == claim.value))
        if claim.kind == "group":
            return self.session.scalar(select(Group).where(Group.group_number == claim.value))
        e164 = try_e164(claim.value, self.region)
        if e164 is None:
            return None
        phone = self.session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == e164))
        if phone is None:
            return None
        return phone.user or phone.group

    def _check_pin(self, record: User | Group, pin: str, now: datetime) -> Verdict:
        if isinstance(record, User):
            if self.hasher.verify(pin, record.pin_hash):
                return self._succeed(record, "pin", None)
            return self._fail(record, now)
        if record.pin_hash and self.hasher.verify(pin, record.pin_hash):
            return self._succeed(record, "pin", None)
        for member in self._active_members(record):
            if self.hasher.verify(pin, member.pin_hash):
                return self._succeed(record, "member_pin", member)
        return self._fail(record, now)

    def _active_members(self, group: Group) -> list[User]:
        return list(
            self.session.scalars(
                select(User)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.group_id == group.id, User.active.is_(True))
                .order_by(User.id)
            )
        )

    def _succeed(self, record: User | Group, reason: str, member: User | None) -> Verdict:
        model = type(record)
        self.session.execute(
            update(model)
            .where(model.id == record.id)
            .values(failed_attempts=0, lockouts=0, locked_until=None)
        )
        subject = Subject(
            kind="user" if isinstance(record, User) else "group",
            id=record.id,
            number=record.account_number if isinstance(record, User) else record.group_number,
            name=record.name,
            phones=tuple(p.e164 for p in self._phones(record)),
            member=member.name if member else None,
        )
        return Verdict("verified", reason, subject, member.id if member else None)

    def _phones(self, record: User | Group) -> list[PhoneNumber]:
        owner = PhoneNumber.user_id if isinstance(record, User) else PhoneNumber.group_id
        return list(
            self.session.scalars(
                select(PhoneNumber).where(owner == record.id).order_by(PhoneNumber.id)
            )
        )

    def _fail(self, record: User | Group, now: datetime) -> Verdict:
        model = type(record)
        # Count only while unlocked: the row lock taken by this UPDATE orders
        # concurrent attempts, and each sees the count the previous one left.
        counted = self.session.execute(
            update(model)
            .where(
                model.id == record.id,
                or_(model.locked_until.is_(None), model.locked_until <= now),
            )
            .values(failed_attempts=model.failed_attempts + 1)
            .returning(model.failed_attempts, model.lockouts)
        ).one_or_none()
        if counted is None:
            return Verdict("locked", "locked")  # another attempt locked it meanwhile
        failures, lockouts = counted
        if failures < self.policy.threshold:
            return Verdict("rejected", "wrong_pin")
        self.session.execute(
            update(model)
            .where(model.id == record.id)
            .values(
                failed_attempts=0,
                lockouts=lockouts + 1,
                locked_until=now + timedelta(seconds=self.policy.duration(lockouts)),
            )
        )
        return Verdict("locked", "locked_now")

    def _record(
        self,
        claim: Claim,
        record: User | Group | None,
        verdict: Verdict,
        call_id: int | None,
    ) -> None:
        self.session.add(
            VerificationAttempt(
                call_id=call_id,
                claim_type=claim.kind,
                claimed=claim.value[:64],
                user_id=record.id if isinstance(record, User) else None,
                group_id=record.id if isinstance(record, Group) else None,
                member_user_id=verdict.member_id,
                outcome=verdict.outcome,
                reason=verdict.reason,
            )
        )
