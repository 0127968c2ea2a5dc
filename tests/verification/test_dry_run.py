"""The test phone's check: the directory's answer, with failures and lockouts
counted in the trial only; nothing written, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Base, utcnow
from app.verification.dry_run import MAX_CLAIMS, DryRunVerifier, TrialCounts
from app.verification.lockout import LockoutPolicy
from app.verification.types import Claim
from tests.helpers.directory import HASHER, add_group, add_user

ADA = Claim("account", "1001")


def snapshot(session: Session) -> dict[str, list[Any]]:
    session.commit()
    return {
        table.name: sorted(map(tuple, session.execute(select(table)).all()), key=repr)
        for table in Base.metadata.sorted_tables
    }


@pytest.fixture
def directory(session: Session) -> None:
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    add_user(session, "1004", "Disabled", "9999", active=False)
    add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada,))


def verifier(session: Session, counts: TrialCounts | None = None) -> DryRunVerifier:
    policy = LockoutPolicy(threshold=3)
    return DryRunVerifier(session, HASHER, policy, counts or TrialCounts())


def test_verdicts_as_a_call_gets_them_and_nothing_written(
    session: Session, directory: None
) -> None:
    before = snapshot(session)
    check = verifier(session)
    verified = check.verify(ADA, "2468")
    assert (verified.outcome, verified.reason) == ("verified", "pin")
    assert verified.subject is not None
    assert verified.subject.fields() == {
        "name": "Ada Lovelace",
        "number": "1001",
        "account": "1001",
    }
    assert verified.subject.phones == ("+13125550101",)
    member = check.verify(Claim("group", "500"), "2468")
    assert (member.outcome, member.reason) == ("verified", "member_pin")
    assert member.subject is not None and member.subject.member == "Ada Lovelace"
    by_phone = check.verify(Claim("caller_id", "(312) 555-0101"), "2468")
    assert by_phone.outcome == "verified"
    assert check.verify(ADA, "0000").reason == "wrong_pin"
    assert check.verify(Claim("account", "7777"), "2468").reason == "unknown"
    assert check.verify(Claim("account", "1004"), "9999").reason == "inactive"
    assert snapshot(session) == before


def test_a_lockout_is_the_trials_own(session: Session, directory: None) -> None:
    counts = TrialCounts()
    check = verifier(session, counts)
    assert [check.verify(ADA, "0000").reason for _ in range(3)] == [
        "wrong_pin",
        "wrong_pin",
        "locked_now",
    ]
    assert check.verify(ADA, "2468").outcome == "locked"  # the right PIN, too late
    # The counts travel with the trial (JSON), and a new trial starts clean.
    again = verifier(session, TrialCounts.from_json(counts.to_json()))
    assert again.verify(ADA, "2468").outcome == "locked"
    assert verifier(session).verify(ADA, "2468").outcome == "verified"


def test_success_clears_the_count(session: Session, directory: None) -> None:
    counts = TrialCounts()
    check = verifier(session, counts)
    check.verify(ADA, "0000")
    check.verify(ADA, "0000")
    assert counts.failed == {"account:1001": 2}
    assert check.verify(ADA, "2468").outcome == "verified"
    assert counts.failed == {}


def test_a_lock_in_the_database_is_respected_by_whose_phone_calls(
    session: Session, directory: None
) -> None:
    from app.models import User

    ada = session.scalars(select(User).where(User.account_number == "1001")).one()
    ada.locked_until = utcnow() + timedelta(minutes=5)
    session.commit()
    check = verifier(session)
    assert check.verify(ADA, "2468").reason == "locked"
    assert check.verify(ADA, "2468", caller="+13125550101").outcome == "verified"
    # A member's phone is the group's own.
    assert check.verify(Claim("group", "500"), "5050", caller="3125550101").outcome == "verified"


def test_what_the_trial_remembers_is_bounded() -> None:
    counts = TrialCounts()
    policy = LockoutPolicy(threshold=2)
    check = DryRunVerifier(None, HASHER, policy, counts)  # type: ignore[arg-type]
    for n in range(MAX_CLAIMS + 5):
        check._fail(f"account:{n}", "unknown")
        check._fail(f"account:{n}", "unknown")
    assert len(counts.locked) == MAX_CLAIMS
    assert TrialCounts.from_json("junk") == TrialCounts()
    assert TrialCounts.from_json({"failed": [], "locked": {}}) == TrialCounts()
