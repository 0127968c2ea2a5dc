"""Checks a claim and PIN as a call would, writing nothing: for trying a flow.

It reads the directory as `Verifier` does (the record, its phones, a group's
members) and opens it with the same PIN rules (`pin_opens`), but takes no row
lock, records no attempt and counts no failure in the database. Failures are
counted in `TrialCounts` instead, which the trial keeps with its own state, so
a lockout can be tried without locking anyone out. A record the database holds
locked is refused as a call would refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.directory.pins import PinHasher
from app.models import Group, Membership, PhoneNumber, User, utcnow
from app.neutral.phones import try_e164
from app.verification.lockout import LockoutPolicy
from app.verification.records import record_of
from app.verification.service import active_members, pin_opens, subject_of
from app.verification.types import Claim, Verdict

# Claims a trial remembers failures of, at most: a trial is a few calls by hand.
MAX_CLAIMS = 20


@dataclass
class TrialCounts:
    """Failures per claim (`kind:value`) within one trial, and the claims it locked."""

    failed: dict[str, int] = field(default_factory=dict)
    locked: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"failed": dict(self.failed), "locked": list(self.locked)}

    @classmethod
    def from_json(cls, data: object) -> TrialCounts:
        if not isinstance(data, dict):
            return cls()
        failed = data.get("failed")
        locked = data.get("locked")
        return cls(
            failed={str(k): int(v) for k, v in failed.items()} if isinstance(failed, dict) else {},
            locked=[str(k) for k in locked] if isinstance(locked, list) else [],
        )


class DryRunVerifier:
    def __init__(
        self,
        session: Session,
        hasher: PinHasher,
        policy: LockoutPolicy,
        counts: TrialCounts,
        region: str = "US",
    ) -> None:
        self.session = session
        self.hasher = hasher
        self.policy = policy
        self.counts = counts
        self.region = region

    def verify(self, claim: Claim, pin: str, caller: str | None = None) -> Verdict:
        """What a call's check would answer, counting a failure only in `counts`."""
        key = f"{claim.kind}:{claim.value[:64]}"
        record = self._find(claim)
        if key in self.counts.locked or (
            record is not None and self._locked_in_database(record, claim, caller, utcnow())
        ):
            return Verdict("locked", "locked")
        if record is None or not record.active:
            return self._fail(key, "unknown" if record is None else "inactive")
        found = record_of(record)
        members = active_members(self.session.connection(), found) if found.is_group else []
        opened = pin_opens(self.hasher, found, pin, members)
        if opened is None:
            return self._fail(key, "wrong_pin")
        reason, member = opened
        # Success clears the claim's count, as a call's does.
        self.counts.failed.pop(key, None)
        subject = subject_of(self.session.connection(), found, None, member)
        return Verdict("verified", reason, subject, member.id if member else None)

    def _fail(self, key: str, reason: str) -> Verdict:
        failures = self.counts.failed.get(key, 0) + 1
        if failures < self.policy.threshold:
            if key in self.counts.failed or len(self.counts.failed) < MAX_CLAIMS:
                self.counts.failed[key] = failures
            return Verdict("rejected", reason)
        self.counts.failed.pop(key, None)
        if len(self.counts.locked) < MAX_CLAIMS:
            self.counts.locked.append(key)
        return Verdict("locked", "locked_now")

    def _find(self, claim: Claim) -> User | Group | None:
        """The claimed record, read without a lock."""
        if claim.kind == "account":
            return self.session.scalar(select(User).where(User.account_number == claim.value))
        if claim.kind == "group":
            return self.session.scalar(select(Group).where(Group.group_number == claim.value))
        phone = self._phone(claim.value)
        return (phone.user or phone.group) if phone is not None else None

    def _phone(self, number: str | None) -> PhoneNumber | None:
        e164 = try_e164(number, self.region) if number else None
        if e164 is None:
            return None
        return self.session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == e164))

    def _owns(self, record: User | Group, phone: PhoneNumber) -> bool:
        """Whether the phone is the record's own (for a group: or a member's)."""
        if isinstance(record, User):
            return phone.user_id == record.id
        if phone.group_id == record.id:
            return True
        member = select(Membership.user_id).where(
            Membership.group_id == record.id, Membership.user_id == phone.user_id
        )
        return phone.user_id is not None and self.session.scalar(member) is not None

    def _locked_in_database(
        self, record: User | Group, claim: Claim, caller: str | None, now: datetime
    ) -> bool:
        """Whether a call would find the record locked: the owner's counters for
        a call from one of its own phones, the others' for any other."""
        phone = None if claim.kind == "caller_id" else self._phone(caller)
        own = claim.kind == "caller_id" or (phone is not None and self._owns(record, phone))
        until = record.owner_locked_until if own else record.locked_until
        return until is not None and until > now
