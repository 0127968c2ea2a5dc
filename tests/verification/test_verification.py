"""The verification service against SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import begin_write
from app.models import UnknownClaim, User, VerificationAttempt, utcnow
from app.verification.lockout import LockoutPolicy
from app.verification.service import Verifier
from app.verification.types import Claim, Verdict
from tests.helpers.directory import HASHER, add_group, add_user

POLICY = LockoutPolicy(threshold=5, base_seconds=60, max_seconds=3600)


class SessionVerifier:
    """A Verifier on the connection the session holds at each check: a test
    commits between checks, and the session lets go of its connection then."""

    def __init__(self, session: Session, policy: LockoutPolicy) -> None:
        self.session, self.policy = session, policy

    def verify(self, *args: Any, **kwargs: Any) -> Verdict:
        begin_write(self.session)  # as a request's would: a writer's transaction
        check = Verifier(self.session.connection(), HASHER, self.policy)
        return check.verify(*args, **kwargs)


def verifier(session: Session, policy: LockoutPolicy = POLICY) -> SessionVerifier:
    return SessionVerifier(session, policy)


def attempts(session: Session) -> list[VerificationAttempt]:
    return list(session.scalars(select(VerificationAttempt).order_by(VerificationAttempt.id)))


def test_right_pin_verifies_the_account_and_records_the_attempt(session: Session) -> None:
    ada = add_user(session, "1001", "Ada", "2468", "+13125550101")
    verdict = verifier(session).verify(Claim("account", "1001"), "2468")
    session.commit()
    assert verdict.outcome == "verified"
    assert verdict.subject is not None
    assert verdict.subject.fields() == {"name": "Ada", "number": "1001", "account": "1001"}
    assert verdict.subject.phones == ("+13125550101",)
    [attempt] = attempts(session)
    assert (attempt.claim_type, attempt.claimed, attempt.user_id) == ("account", "1001", ada.id)
    assert (attempt.outcome, attempt.reason) == ("verified", "pin")


def test_unknown_account_and_wrong_pin_look_the_same_to_the_caller(session: Session) -> None:
    add_user(session, "1001", "Ada", "2468")
    unknown = verifier(session).verify(Claim("account", "9999"), "2468")
    wrong = verifier(session).verify(Claim("account", "1001"), "1111")
    session.commit()
    assert unknown.outcome == wrong.outcome == "rejected"
    assert unknown.subject is None and wrong.subject is None
    assert [a.reason for a in attempts(session)] == ["unknown", "wrong_pin"]


def test_disabled_user_is_refused_even_with_the_right_pin(session: Session) -> None:
    add_user(session, "1004", "Off", "9999", active=False)
    verdict = verifier(session).verify(Claim("account", "1004"), "9999")
    assert (verdict.outcome, verdict.reason) == ("rejected", "inactive")


def test_caller_id_claims_the_user_who_registered_that_phone(session: Session) -> None:
    add_user(session, "1001", "Ada", "2468", "+13125550101")
    found = verifier(session).verify(Claim("caller_id", "(312) 555-0101"), "2468")
    assert found.outcome == "verified" and found.subject and found.subject.number == "1001"
    stranger = verifier(session).verify(Claim("caller_id", "3125550199"), "2468")
    withheld = verifier(session).verify(Claim("caller_id", "anonymous"), "2468")
    assert stranger.outcome == withheld.outcome == "rejected"


def test_group_accepts_its_pin_or_a_members_pin_and_records_the_member(
    session: Session,
) -> None:
    ada = add_user(session, "1001", "Ada", "2468")
    grace = add_user(session, "1002", "Grace", "1357")
    add_user(session, "1003", "Outsider", "8642")
    group = add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada, grace))

    by_group_pin = verifier(session).verify(Claim("group", "500"), "5050")
    by_member = verifier(session).verify(Claim("group", "500"), "1357")
    by_outsider = verifier(session).verify(Claim("group", "500"), "8642")
    session.commit()

    assert by_group_pin.outcome == "verified" and by_group_pin.reason == "pin"
    assert by_member.outcome == "verified" and by_member.reason == "member_pin"
    assert by_member.subject and by_member.subject.fields()["member"] == "Grace"
    assert by_member.subject.phones == ("+13125550500",)
    assert by_outsider.outcome == "rejected"
    recorded = attempts(session)
    assert [a.group_id for a in recorded] == [group.id] * 3
    assert [a.member_user_id for a in recorded] == [None, grace.id, None]


def test_group_without_pin_accepts_only_members(session: Session) -> None:
    ada = add_user(session, "1001", "Ada", "2468")
    add_group(session, "600", "Day shift", None, members=(ada,))
    assert verifier(session).verify(Claim("group", "600"), "2468").outcome == "verified"
    assert verifier(session).verify(Claim("group", "600"), "0000").outcome == "rejected"


def test_five_failures_lock_and_a_locked_account_refuses_the_right_pin(
    session: Session,
) -> None:
    add_user(session, "1001", "Ada", "2468")
    check = verifier(session)
    reasons = [check.verify(Claim("account", "1001"), "0000").reason for _ in range(5)]
    session.commit()
    assert reasons == ["wrong_pin"] * 4 + ["locked_now"]
    locked = check.verify(Claim("account", "1001"), "2468")
    session.commit()
    assert (locked.outcome, locked.reason) == ("locked", "locked")
    user = session.scalars(select(User)).one()
    session.refresh(user)
    assert user.lockouts == 1 and user.locked_until is not None
    assert timedelta(seconds=55) < user.locked_until - utcnow() <= timedelta(seconds=60)


def test_lockout_grows_and_expires_and_success_resets_the_count(session: Session) -> None:
    user = add_user(session, "1001", "Ada", "2468")
    check = verifier(session)
    for _ in range(5):
        check.verify(Claim("account", "1001"), "0000")
    session.commit()
    # Let the first lockout expire, then lock again: the second lasts twice as long.
    user.locked_until = utcnow() - timedelta(seconds=1)
    session.commit()
    for _ in range(5):
        check.verify(Claim("account", "1001"), "0000")
    session.commit()
    session.refresh(user)
    assert user.lockouts == 2
    assert user.locked_until is not None
    assert timedelta(seconds=115) < user.locked_until - utcnow() <= timedelta(seconds=120)

    user.locked_until = utcnow() - timedelta(seconds=1)
    session.commit()
    check.verify(Claim("account", "1001"), "0000")
    assert check.verify(Claim("account", "1001"), "2468").outcome == "verified"
    session.commit()
    session.refresh(user)
    assert (user.failed_attempts, user.lockouts, user.locked_until) == (0, 0, None)


def test_attempts_never_hold_the_pin(session: Session) -> None:
    add_user(session, "1001", "Ada", "24682468")
    verifier(session).verify(Claim("account", "1001"), "13571357")
    verifier(session).verify(Claim("account", "1001"), "24682468")
    session.commit()
    for attempt in attempts(session):
        row = {c.name: getattr(attempt, c.name) for c in VerificationAttempt.__table__.columns}
        assert "13571357" not in str(row) and "24682468" not in str(row)


def _concurrently(app: Flask, count: int, policy: LockoutPolicy, pin: str) -> list[str]:
    """`count` attempts on account 1001 at once, each in its own session."""
    barrier = threading.Barrier(count, timeout=30)
    reasons: list[str] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        session = app.extensions["glue.sessionmaker"]()
        try:
            barrier.wait()
            reasons.append(verifier(session, policy).verify(Claim("account", "1001"), pin).reason)
            session.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=attempt) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return reasons


def test_concurrent_wrong_pins_each_count(app: Flask, session: Session) -> None:
    add_user(session, "1001", "Ada", "2468")
    reasons = _concurrently(app, 20, LockoutPolicy(threshold=100), "0000")
    assert reasons == ["wrong_pin"] * 20
    user = session.scalars(select(User)).one()
    session.refresh(user)
    assert user.failed_attempts == 20
    assert session.scalar(select(func.count()).select_from(VerificationAttempt)) == 20


def test_concurrent_wrong_pins_lock_exactly_once_at_the_threshold(
    app: Flask, session: Session
) -> None:
    add_user(session, "1001", "Ada", "2468")
    reasons = _concurrently(app, 20, POLICY, "0000")
    assert sorted(reasons) == sorted(["wrong_pin"] * 4 + ["locked_now"] + ["locked"] * 15)
    user = session.scalars(select(User)).one()
    session.refresh(user)
    assert (user.lockouts, user.failed_attempts) == (1, 0)


@pytest.mark.parametrize("pin", ["", "NA", "<x>&'"])
def test_odd_pins_are_just_wrong(session: Session, pin: str) -> None:
    add_user(session, "1001", "Ada", "2468")
    assert verifier(session).verify(Claim("account", "1001"), pin).outcome == "rejected"


# --- a check made for one user (a verification call placed to them) -------------


def counters(session: Session, user: User) -> tuple[int, int, int, int]:
    session.refresh(user)
    return (user.failed_attempts, user.owner_failed_attempts, user.lockouts, user.owner_lockouts)


def test_a_check_for_one_user_verifies_that_user(session: Session) -> None:
    ada = add_user(session, "1001", "Ada", "2468", "+13125550101")
    verdict = verifier(session).verify(Claim("account", "1001"), "2468", for_user=ada.id)
    by_phone = verifier(session).verify(Claim("caller_id", "3125550101"), "2468", for_user=ada.id)
    session.commit()
    assert (verdict.outcome, verdict.reason) == ("verified", "pin")
    assert verdict.subject is not None and verdict.subject.id == ada.id
    assert by_phone.outcome == "verified"


@pytest.mark.parametrize(
    "claim",
    [
        Claim("account", "1002"),  # Grace, with her own right PIN
        Claim("caller_id", "3125550102"),  # Grace's phone
        Claim("group", "500"),  # a group Ada is in, by a member's PIN
        Claim("account", "9999"),  # nobody
    ],
)
def test_a_check_for_one_user_naming_anyone_else_fails_as_that_users(
    session: Session, claim: Claim, caplog: pytest.LogCaptureFixture
) -> None:
    ada = add_user(session, "1001", "Ada", "2468", "+13125550101")
    grace = add_user(session, "1002", "Grace", "1357", "+13125550102")
    group = add_group(session, "500", "Night shift", "5050", members=(ada, grace))

    with caplog.at_level(logging.INFO, logger="app"):
        verdict = verifier(session).verify(claim, "1357", for_user=ada.id)
    session.commit()
    # The log says what kind of claim it was and for whom, never what was typed.
    said = [record.getMessage() for record in caplog.records]
    assert f"a check made for user {ada.id} claimed another {claim.kind}" in " ".join(said)
    assert not [line for line in said if claim.value in line]

    assert (verdict.outcome, verdict.reason, verdict.subject) == ("rejected", "other_account", None)
    [attempt] = attempts(session)
    assert (attempt.claim_type, attempt.claimed) == (claim.kind, claim.value)
    assert (attempt.user_id, attempt.group_id, attempt.outcome) == (ada.id, None, "rejected")
    # Counted as Ada's failure from elsewhere (no caller given); Grace, the group
    # and unknown claims are not touched.
    assert counters(session, ada) == (1, 0, 0, 0)
    assert counters(session, grace) == (0, 0, 0, 0)
    session.refresh(group)
    assert (group.failed_attempts, group.owner_failed_attempts) == (0, 0)
    assert session.scalar(select(func.count()).select_from(UnknownClaim)) == 0


def test_another_account_from_the_users_own_phone_counts_on_the_owners_counter(
    session: Session,
) -> None:
    ada = add_user(session, "1001", "Ada", "2468", "+13125550101")
    grace = add_user(session, "1002", "Grace", "1357", "+13125550102")
    check = verifier(session)
    reasons = [
        check.verify(Claim("account", "1002"), "1357", caller="3125550101", for_user=ada.id).reason
        for _ in range(5)
    ]
    session.commit()
    # Like five wrong PINs of Ada's from her phone: she is locked, Grace is not.
    assert reasons == ["other_account"] * 4 + ["locked_now"]
    assert counters(session, ada) == (0, 0, 0, 1)
    assert ada.owner_locked_until is not None
    assert counters(session, grace) == (0, 0, 0, 0) and grace.owner_locked_until is None
    # Grace herself still gets in, on a call of her own.
    assert check.verify(Claim("account", "1002"), "1357", caller="3125550102").outcome == (
        "verified"
    )


def test_a_check_for_a_locked_user_is_refused_whatever_is_claimed(session: Session) -> None:
    ada = add_user(session, "1001", "Ada", "2468")
    add_user(session, "1002", "Grace", "1357")
    ada.locked_until = utcnow() + timedelta(minutes=5)
    session.commit()
    verdict = verifier(session).verify(Claim("account", "1002"), "1357", for_user=ada.id)
    session.commit()
    assert (verdict.outcome, verdict.reason) == ("locked", "locked")
    assert [(a.user_id, a.reason) for a in attempts(session)] == [(ada.id, "locked")]


def test_a_check_for_a_user_since_deleted_verifies_nobody(session: Session) -> None:
    ada = add_user(session, "1001", "Ada", "2468")
    gone = add_user(session, "1009", "Gone", "1111")
    gone_id = gone.id
    session.delete(gone)
    session.commit()
    verdict = verifier(session).verify(Claim("account", "1001"), "2468", for_user=gone_id)
    session.commit()
    assert (verdict.outcome, verdict.reason) == ("rejected", "unknown")
    assert [(a.claimed, a.user_id) for a in attempts(session)] == [("1001", None)]
    assert counters(session, ada) == (0, 0, 0, 0)
