"""More than one host: Glue keeps nothing between requests but the database.

Each caller journey of tests/journeys/test_conformance.py is played through real
gunicorn servers on one PostgreSQL schema, first all on one server, then with
the call's requests alternating between two (each with two workers). Both runs
must give the same replies, byte for byte, and leave the same rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Call, CallEvent, Group, User, VerificationAttempt
from tests.helpers.database import truncate
from tests.helpers.directory import add_group, add_user
from tests.helpers.hardening.callers import PLATFORMS
from tests.helpers.hardening.hosts import KEPT_TABLES
from tests.helpers.journeys import SCENARIOS, Driver, Heard
from tests.helpers.servers import Balancer, Server

# Fields that differ between two deliveries of the same journey (IfbyPhone's
# clock); everything else a platform sent must be stored alike.
VOLATILE = {"timestamp"}


@dataclass(frozen=True)
class Journey:
    heard: list[Heard]
    replies: list[bytes]
    hosts: set[str]  # which servers answered
    rows: dict[str, Any]


def seed(session: Session) -> None:
    ada = add_user(session, "1001", "Ada Lovelace", "2468", "+13125550101")
    grace = add_user(session, "1002", "Grace Hopper", "1357", "+13125550102")
    add_group(session, "500", "Night shift", "5050", "+13125550500", members=(ada, grace))


def play(hosts: tuple[str, ...], platform: str, name: str, session: Session) -> Journey:
    seed(session)
    scenario = SCENARIOS[name]
    balancer = Balancer(hosts)
    # Balancer quacks like FlaskClient: the in-process journeys run unchanged.
    heard = scenario.play(lambda call_id: Driver(balancer, platform, scenario.flow, call_id))  # type: ignore[arg-type]
    assert all(r.status_code == 200 for r in balancer.replies)
    return Journey(
        heard,
        [r.data for r in balancer.replies],
        {r.server for r in balancer.replies},
        rows(session),
    )


def rows(session: Session) -> dict[str, Any]:
    """Every row the journey left, without ids, times and request ids."""
    session.commit()  # a fresh snapshot
    try:
        return _rows(session)
    finally:
        session.rollback()  # holds no locks: the next TRUNCATE would wait for them


def _rows(session: Session) -> dict[str, Any]:
    accounts = {u.id: u.account_number for u in session.scalars(select(User))}
    groups = {g.id: g.group_number for g in session.scalars(select(Group))}
    calls = {c.id: c for c in session.scalars(select(Call))}
    call_id = {k: c.platform_call_id for k, c in calls.items()}
    return {
        "calls": sorted(
            (
                c.platform,
                c.platform_call_id,
                c.caller_number,
                c.flow,
                c.status,
                c.outcome,
                c.platform_status,
                json.dumps(c.state, sort_keys=True),
                c.ended_at is None,
            )
            for c in calls.values()
        ),
        "events": [
            (
                call_id.get(e.call_id),
                e.platform,
                e.kind,
                e.dedupe_key,
                {k: v for k, v in e.payload.items() if k not in VOLATILE},
                e.outcome,
                e.reply,
            )
            for e in session.scalars(select(CallEvent).order_by(CallEvent.id))
        ],
        "attempts": [
            (
                call_id.get(a.call_id),
                a.claim_type,
                a.claimed,
                accounts.get(a.user_id),
                groups.get(a.group_id),
                accounts.get(a.member_user_id),
                a.outcome,
                a.reason,
            )
            for a in session.scalars(select(VerificationAttempt).order_by(VerificationAttempt.id))
        ],
        "lockouts": sorted(
            (r.account_number if isinstance(r, User) else r.group_number, *_counters(r))
            for model in (User, Group)
            for r in session.scalars(select(model))
        ),
    }


def _counters(record: User | Group) -> tuple[int, int, bool]:
    return record.failed_attempts, record.lockouts, record.locked_until is not None


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_a_call_spread_over_two_hosts_ends_as_on_one(
    two_servers: tuple[Server, Server], shared_url: str, db: Session, platform: str, name: str
) -> None:
    a, b = two_servers
    one = play((a.base,), platform, name, db)
    truncate(shared_url, KEPT_TABLES)
    spread = play((a.base, b.base), platform, name, db)

    assert one.heard == spread.heard == SCENARIOS[name].heard
    assert spread.replies == one.replies
    assert spread.rows == one.rows
    assert one.rows["calls"], "the journey must have left rows to compare"
    assert one.hosts == {a.base}
    # (VoipNow's one-request journeys cannot be spread: the whole try is one reply.)
    assert spread.hosts == {a.base, b.base} or len(spread.replies) == 1
