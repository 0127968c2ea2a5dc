"""`flask retention purge` on SQLite and PostgreSQL: which rows go, which stay
(calls still going on, lockouts, the audit trail), dry runs and batches."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    AdminAction,
    ApiToken,
    Base,
    Call,
    CallAction,
    CallEvent,
    OneTimeCode,
    UnknownClaim,
    User,
    VerificationAttempt,
    WebhookDelivery,
    WebhookEvent,
    utcnow,
)
from tests.helpers.directory import add_user

NOW = utcnow()
OLD = NOW - timedelta(days=100)  # past the default 90 days
RECENT = NOW - timedelta(days=1)
LOCKED_UNTIL = NOW + timedelta(hours=1)


def call(name: str, at: datetime, status: str = "ended", action: CallAction | None = None) -> Call:
    return Call(
        platform="ifbyphone",
        platform_call_id=name,
        flow="verify_caller",
        state={},
        status=status,
        started_at=at,
        updated_at=at,
        ended_at=at if status == "ended" else None,
        action_id=action.id if action else None,
    )


def event(name: str, at: datetime, of: Call | None = None) -> CallEvent:
    return CallEvent(
        call=of, platform="ifbyphone", kind="turn", dedupe_key=name, payload={}, received_at=at
    )


def attempt(user: User, at: datetime, of: Call | None = None) -> VerificationAttempt:
    return VerificationAttempt(
        call_id=of.id if of else None,
        claim_type="account",
        claimed=user.account_number,
        user_id=user.id,
        outcome="rejected",
        reason="wrong_pin",
        created_at=at,
    )


def action(user: User, at: datetime) -> CallAction:
    return CallAction(
        user_id=user.id,
        via="web",
        purpose="connect",
        target_kind="originator",
        from_number="+13125550101",
        provider="didforsale",
        status="completed",
        created_at=at,
        updated_at=at,
    )


def code(user: User, expires: datetime, of: CallAction | None = None) -> OneTimeCode:
    return OneTimeCode(
        user_id=user.id,
        phone="+13125550101",
        seed="x" * 32,
        expires_at=expires,
        action_id=of.id if of else None,
        created_at=expires - timedelta(minutes=10),
    )


def webhook_event(token: ApiToken, name: str, at: datetime, state: str) -> WebhookEvent:
    """An event with one delivery attempt per event (a pending one has been refused once)."""
    return WebhookEvent(
        event_id=f"evt_{name}",
        api_token_id=token.id,
        type="call.completed",
        url="https://crm.example.com/hooks/glue",
        body="{}",
        state=state,
        attempts=1,
        created_at=at,
        deliveries=[
            WebhookDelivery(
                url="https://crm.example.com/hooks/glue",
                attempt=1,
                status_code=200 if state == "delivered" else 500,
                duration_ms=5,
                created_at=at,
            )
        ],
    )


@pytest.fixture
def records(session: Session) -> dict[str, int]:
    """One of each kind of row, old or recent; returns ids by name."""
    ada = add_user(session, "1001", "Ada", "2468", "+13125550101")
    ada.failed_attempts, ada.lockouts, ada.locked_until = 3, 2, LOCKED_UNTIL
    session.add(
        UnknownClaim(claim_type="account", claimed="9999", failed_attempts=4, created_at=OLD)
    )
    session.add(
        AdminAction(action="unlock", target_kind="user", target_number="1001", created_at=OLD)
    )
    token = ApiToken(name="host", token_hash="h" * 64, created_at=OLD)
    session.add(token)
    actions = {
        "old_action": action(ada, OLD),  # its only call is purged: it goes
        "old_action_of_live_call": action(ada, OLD),  # its call goes on: it stays
        "recent_action": action(ada, RECENT),
        "old_action_with_code": action(ada, OLD),
    }
    session.add_all(actions.values())
    session.flush()
    calls = {
        "ended_long_ago": call("c1", OLD, action=actions["old_action"]),
        "abandoned": call("c2", OLD, status="active"),  # hung up mid-flow, never closed
        "in_progress": call("c3", OLD, status="active", action=actions["old_action_of_live_call"]),
        "ended_yesterday": call("c4", RECENT),
    }
    session.add_all(calls.values())
    session.flush()
    events = {
        "of_ended_1": event("e1", OLD, calls["ended_long_ago"]),
        "of_ended_2": event("e2", OLD, calls["ended_long_ago"]),
        "of_abandoned": event("e3", OLD, calls["abandoned"]),
        "of_in_progress_old": event("e4", OLD, calls["in_progress"]),
        "of_in_progress_new": event("e5", NOW, calls["in_progress"]),
        "of_yesterday": event("e6", RECENT, calls["ended_yesterday"]),
        "malformed_old": event("e7", OLD),
        "malformed_new": event("e8", RECENT),
    }
    attempts = {
        "of_ended": attempt(ada, OLD, calls["ended_long_ago"]),
        "of_in_progress": attempt(ada, OLD, calls["in_progress"]),
        "web_old": attempt(ada, OLD),
        "web_new": attempt(ada, RECENT),
    }
    codes = {
        "expired_long_ago": code(ada, OLD, actions["old_action_with_code"]),
        "expired_yesterday": code(ada, RECENT),
        "valid": code(ada, NOW + timedelta(minutes=5)),
    }
    webhooks = {
        "delivered_long_ago": webhook_event(token, "w1", OLD, "delivered"),
        "given_up_long_ago": webhook_event(token, "w2", OLD, "failed"),
        "still_pending": webhook_event(token, "w3", OLD, "pending"),  # still being tried
        "delivered_yesterday": webhook_event(token, "w4", RECENT, "delivered"),
    }
    session.add_all([*events.values(), *attempts.values(), *codes.values(), *webhooks.values()])
    session.commit()
    return {
        name: row.id
        for group in (actions, calls, events, attempts, codes, webhooks)
        for name, row in group.items()
    }


def remaining(session: Session, model: type[Base], records: dict[str, int]) -> set[str]:
    """The names of the fixture's rows of `model` still there."""
    session.commit()  # a fresh snapshot: see what the command deleted
    ids = set(session.scalars(select(model.id)))  # type: ignore[attr-defined]
    return {name for name in KINDS[model] if records[name] in ids}


KINDS: dict[type[Base], set[str]] = {
    CallAction: {"old_action", "old_action_of_live_call", "recent_action", "old_action_with_code"},
    Call: {"ended_long_ago", "abandoned", "in_progress", "ended_yesterday"},
    CallEvent: {
        "of_ended_1",
        "of_ended_2",
        "of_abandoned",
        "of_in_progress_old",
        "of_in_progress_new",
        "of_yesterday",
        "malformed_old",
        "malformed_new",
    },
    VerificationAttempt: {"of_ended", "of_in_progress", "web_old", "web_new"},
    OneTimeCode: {"expired_long_ago", "expired_yesterday", "valid"},
    WebhookEvent: {
        "delivered_long_ago",
        "given_up_long_ago",
        "still_pending",
        "delivered_yesterday",
    },
}


def counts(output: str) -> dict[str, int]:
    return {name: int(n) for name, n in re.findall(r"^(\w+): (\d+)$", output, re.MULTILINE)}


def rows(session: Session) -> dict[str, int]:
    session.commit()
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (
            VerificationAttempt,
            CallEvent,
            Call,
            OneTimeCode,
            CallAction,
            WebhookDelivery,
            WebhookEvent,
        )
    }


EXPECTED = {
    "verification_attempts": 2,
    "call_events": 4,
    "calls": 2,
    "one_time_codes": 1,
    "call_actions": 2,
    "webhook_deliveries": 2,
    "webhook_events": 2,
}


@pytest.mark.parametrize("batch_size", [500, 1])
def test_purge_deletes_what_is_old_and_keeps_what_is_still_needed(
    runner: FlaskCliRunner, session: Session, records: dict[str, int], batch_size: int
) -> None:
    result = runner.invoke(args=["retention", "purge", "--batch-size", str(batch_size)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted rows older than 90 days")
    assert counts(result.output) == EXPECTED

    assert remaining(session, Call, records) == {"in_progress", "ended_yesterday"}
    assert remaining(session, CallEvent, records) == {
        "of_in_progress_old",  # a call still going on keeps its whole trail
        "of_in_progress_new",
        "of_yesterday",
        "malformed_new",
    }
    assert remaining(session, VerificationAttempt, records) == {"of_in_progress", "web_new"}
    assert remaining(session, OneTimeCode, records) == {"expired_yesterday", "valid"}
    assert remaining(session, CallAction, records) == {
        "old_action_of_live_call",
        "recent_action",
    }
    assert remaining(session, WebhookEvent, records) == {"still_pending", "delivered_yesterday"}
    kept_deliveries = session.scalars(select(WebhookDelivery.webhook_event_id)).all()
    assert sorted(kept_deliveries) == sorted(
        (records["still_pending"], records["delivered_yesterday"])
    )
    # Lockouts, counters, the audit trail and the directory are never touched.
    ada = session.scalars(select(User)).one()
    assert (ada.failed_attempts, ada.lockouts, ada.locked_until) == (3, 2, LOCKED_UNTIL)
    claim = session.scalars(select(UnknownClaim)).one()
    assert claim.failed_attempts == 4
    assert session.scalar(select(func.count()).select_from(AdminAction)) == 1
    assert session.scalar(select(func.count()).select_from(ApiToken)) == 1

    again = runner.invoke(args=["retention", "purge"])
    assert counts(again.output) == dict.fromkeys(EXPECTED, 0)


def test_a_dry_run_counts_the_same_rows_and_deletes_none(
    runner: FlaskCliRunner, session: Session, records: dict[str, int]
) -> None:
    before = rows(session)
    result = runner.invoke(args=["retention", "purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("would delete rows older than 90 days")
    assert counts(result.output) == EXPECTED
    assert rows(session) == before


def test_the_period_comes_from_the_option_else_the_config(
    app: Flask, runner: FlaskCliRunner, session: Session, records: dict[str, int]
) -> None:
    app.config["RETENTION_DAYS"] = 365
    kept = runner.invoke(args=["retention", "purge"])
    assert "older than 365 days" in kept.output
    assert counts(kept.output) == dict.fromkeys(EXPECTED, 0)
    # --older-than 0 would take calls of this very minute: refused.
    assert runner.invoke(args=["retention", "purge", "--older-than", "0"]).exit_code == 2
    shorter = runner.invoke(args=["retention", "purge", "--older-than", "30"])
    assert counts(shorter.output) == EXPECTED
