"""Lockout cannot be used to lock a whole directory out: failures from strangers'
numbers lock strangers out, while the owner calling from one of the record's
own phones is counted apart (on SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools

from flask.testing import FlaskClient, FlaskCliRunner
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import begin_write
from app.models import Group, User
from app.verification.lockout import LockoutPolicy
from app.verification.service import Verifier
from app.verification.types import Claim
from tests.helpers.directory import HASHER, add_group, add_user
from tests.helpers.settings import TEST_SECRETS

POLICY = LockoutPolicy(threshold=3, base_seconds=60, max_seconds=3600)
ADA_PHONE, GRACE_PHONE, STRANGER = "+13125550101", "+13125550102", "3125550199"
_calls = itertools.count(1)


def verify(session: Session, claim: Claim, pin: str, caller: str | None) -> str:
    begin_write(session)
    verdict = Verifier(session.connection(), HASHER, POLICY).verify(claim, pin, caller=caller)
    session.commit()
    return verdict.outcome


def lock_out(session: Session, claim: Claim, caller: str | None) -> None:
    outcomes = [verify(session, claim, "0000", caller) for _ in range(POLICY.threshold)]
    assert outcomes[-1] == "locked"


def test_strangers_lock_strangers_out_not_the_owner(session: Session) -> None:
    add_user(session, "1001", "Ada", "2468", ADA_PHONE)
    ada = Claim("account", "1001")
    lock_out(session, ada, STRANGER)
    assert verify(session, ada, "2468", STRANGER) == "locked"
    assert verify(session, ada, "2468", None) == "locked"  # withheld: not provably hers
    # Ada, from her own phone however she writes it, is not locked out.
    assert verify(session, ada, "2468", "(312) 555-0101") == "verified"
    user = session.scalars(select(User)).one()
    assert user.locked_until is not None and user.owner_locked_until is None
    assert verify(session, ada, "2468", STRANGER) == "locked"  # her success unlocks no one else


def test_failures_from_the_owners_phone_lock_that_phone_only(session: Session) -> None:
    add_user(session, "1001", "Ada", "2468", ADA_PHONE)
    ada = Claim("account", "1001")
    lock_out(session, ada, ADA_PHONE)
    assert verify(session, ada, "2468", ADA_PHONE) == "locked"
    # Whoever has her phone (or spoofs it) gets `threshold` tries, no more.
    user = session.scalars(select(User)).one()
    assert (user.owner_lockouts, user.lockouts) == (1, 0)
    assert verify(session, ada, "2468", STRANGER) == "verified"


def test_a_members_phone_is_the_groups_own(session: Session) -> None:
    ada = add_user(session, "1001", "Ada", "2468", ADA_PHONE)
    add_group(session, "500", "Night shift", "5050", members=(ada,))
    night = Claim("group", "500")
    lock_out(session, night, STRANGER)
    assert verify(session, night, "5050", ADA_PHONE) == "verified"
    assert verify(session, night, "5050", GRACE_PHONE) == "locked"  # not a member's
    group = session.scalars(select(Group)).one()
    assert group.locked_until is not None and group.owner_locked_until is None


def test_a_claim_by_caller_id_is_the_owners_phone(session: Session) -> None:
    add_user(session, "1001", "Ada", "2468", ADA_PHONE)
    lock_out(session, Claim("account", "1001"), STRANGER)
    assert verify(session, Claim("caller_id", ADA_PHONE), "2468", ADA_PHONE) == "verified"


def test_locking_a_whole_directory_locks_no_owner_out(
    client: FlaskClient, session: Session
) -> None:
    """An attacker spoofing a fresh number per try locks every account (for
    strangers); each owner calling from home still gets through."""
    users = [
        add_user(session, f"{2000 + n}", f"User {n}", "2468", f"+1312555{1000 + n}")
        for n in range(10)
    ]
    spoofed = itertools.count(3125557000)
    for user in users:
        replies = [send(client, str(next(spoofed)), user.account_number, "0000") for _ in range(5)]
        assert replies[-1] == "locked"  # the shipped flow's locked outcome
    for user in users:
        assert send(client, user.phones[0].e164, user.account_number, "2468") == "verified"
        assert send(client, str(next(spoofed)), user.account_number, "2468") == "locked"


def send(client: FlaskClient, caller: str, account: str, pin: str) -> str:
    """A new IfbyPhone call of verify_caller; the outcome its reply carries in p_t."""
    response = client.post(
        "/ifbyphone/verify_caller",
        query_string={"key": TEST_SECRETS["IFBYPHONE_SECRET"]},
        data={
            "session_id": f"owner-{next(_calls)}",
            "caller_id": caller,
            "account": account,
            "pin": pin,
        },
    )
    p_t = etree.fromstring(response.data).findtext("parameters/p_t") or ""
    return p_t.split("|")[4].split(":")[0]  # turn|1||next|verified:1


def test_unlock_forgets_both_counts(
    runner: FlaskCliRunner, session: Session, app_config: dict[str, object]
) -> None:
    add_user(session, "1001", "Ada", "2468", ADA_PHONE)
    ada = Claim("account", "1001")
    lock_out(session, ada, STRANGER)
    lock_out(session, ada, ADA_PHONE)
    listed = runner.invoke(args=["users", "list"]).output
    assert "UTC" in listed.splitlines()[-1]  # locked until ...
    result = runner.invoke(args=["users", "unlock", "1001"])
    assert result.exit_code == 0, result.output
    session.commit()
    user = session.scalars(select(User)).one()
    assert (user.failed_attempts, user.lockouts, user.locked_until) == (0, 0, None)
    counts = (user.owner_failed_attempts, user.owner_lockouts, user.owner_locked_until)
    assert counts == (0, 0, None)
