"""Deleting call records older than the retention period, a batch per transaction.

Goes, once older than the cutoff:
- calls with no activity since (their row last changed before it and no event
  arrived since), with their events and verification attempts; such a call is
  over whatever its status says (a caller who hangs up mid-flow on IfbyPhone
  leaves it `active`), since the cutoff is at least a day back;
- requests kept without a call (malformed ones);
- verification attempts (the lockout counters live on users, groups and
  unknown_claims, which are never touched);
- one-time codes that expired before it;
- click-to-call actions last changed before it, once no kept call refers to them;
- webhook events made before it that were delivered or given up on, with
  their delivery attempts (one still pending keeps being tried).

Stays: the directory, lock counters, API tokens, admin_actions (the audit trail
outlives what it audits), and every record of a call still going on.

Each batch is its own short transaction, so on SQLite other writers wait for
one batch at most, not for the whole purge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, delete, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db import begin_write
from app.models import (
    Base,
    Call,
    CallAction,
    CallEvent,
    OneTimeCode,
    VerificationAttempt,
    WebhookDelivery,
    WebhookEvent,
)

# The tables purged, in the order they are purged and reported.
TABLES = (
    "verification_attempts",
    "call_events",
    "calls",
    "one_time_codes",
    "call_actions",
    "webhook_deliveries",
    "webhook_events",
)
DEFAULT_BATCH_SIZE = 500


def finished_call(cutoff: datetime) -> ColumnElement[bool]:
    """A call with no activity since `cutoff`."""
    recent_event = exists().where(CallEvent.call_id == Call.id, CallEvent.received_at >= cutoff)
    return (Call.updated_at < cutoff) & ~recent_event


def _old_attempt(cutoff: datetime) -> ColumnElement[bool]:
    """An old attempt, unless it belongs to a call that stays (its trail stays whole)."""
    kept_call = exists().where(Call.id == VerificationAttempt.call_id, ~finished_call(cutoff))
    return (VerificationAttempt.created_at < cutoff) & ~kept_call


def _old_orphan_event(cutoff: datetime) -> ColumnElement[bool]:
    return CallEvent.call_id.is_(None) & (CallEvent.received_at < cutoff)


def _old_code(cutoff: datetime) -> ColumnElement[bool]:
    return OneTimeCode.expires_at < cutoff


def _old_action(cutoff: datetime) -> ColumnElement[bool]:
    kept_call = exists().where(Call.action_id == CallAction.id, ~finished_call(cutoff))
    return (CallAction.updated_at < cutoff) & ~kept_call


def _old_webhook_event(cutoff: datetime) -> ColumnElement[bool]:
    return (WebhookEvent.created_at < cutoff) & (WebhookEvent.state != "pending")


def count(session: Session, cutoff: datetime) -> dict[str, int]:
    """What `purge` would delete, per table, deleting nothing."""

    def rows(stmt: Select[int]) -> int:
        return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0

    calls = select(Call.id).where(finished_call(cutoff))
    counts = {
        "verification_attempts": rows(select(VerificationAttempt.id).where(_old_attempt(cutoff))),
        "call_events": rows(select(CallEvent.id).where(CallEvent.call_id.in_(calls)))
        + rows(select(CallEvent.id).where(_old_orphan_event(cutoff))),
        "calls": rows(calls),
        "one_time_codes": rows(select(OneTimeCode.id).where(_old_code(cutoff))),
        "call_actions": rows(select(CallAction.id).where(_old_action(cutoff))),
        "webhook_deliveries": rows(
            select(WebhookDelivery.id).where(
                WebhookDelivery.webhook_event_id.in_(
                    select(WebhookEvent.id).where(_old_webhook_event(cutoff))
                )
            )
        ),
        "webhook_events": rows(select(WebhookEvent.id).where(_old_webhook_event(cutoff))),
    }
    session.rollback()
    return counts


def purge(
    session: Session, cutoff: datetime, batch_size: int = DEFAULT_BATCH_SIZE
) -> dict[str, int]:
    """Delete what is older than `cutoff` (see the module's docstring); rows deleted per table."""
    counts = dict.fromkeys(TABLES, 0)

    def attempts(ids: Sequence[int]) -> None:
        counts["verification_attempts"] += _delete(
            session, VerificationAttempt, VerificationAttempt.id.in_(ids)
        )

    def calls(ids: Sequence[int]) -> None:
        counts["call_events"] += _delete(session, CallEvent, CallEvent.call_id.in_(ids))
        counts["calls"] += _delete(session, Call, Call.id.in_(ids))

    def orphan_events(ids: Sequence[int]) -> None:
        counts["call_events"] += _delete(session, CallEvent, CallEvent.id.in_(ids))

    def codes(ids: Sequence[int]) -> None:
        counts["one_time_codes"] += _delete(session, OneTimeCode, OneTimeCode.id.in_(ids))

    def actions(ids: Sequence[int]) -> None:
        counts["call_actions"] += _delete(session, CallAction, CallAction.id.in_(ids))

    def webhook_events(ids: Sequence[int]) -> None:
        counts["webhook_deliveries"] += _delete(
            session, WebhookDelivery, WebhookDelivery.webhook_event_id.in_(ids)
        )
        counts["webhook_events"] += _delete(session, WebhookEvent, WebhookEvent.id.in_(ids))

    # Attempts before their calls: deleting a call would otherwise first set
    # its attempts' call_id to NULL, only for them to be deleted next.
    _in_batches(session, VerificationAttempt.id, _old_attempt(cutoff), batch_size, attempts)
    _in_batches(session, Call.id, finished_call(cutoff), batch_size, calls)
    _in_batches(session, CallEvent.id, _old_orphan_event(cutoff), batch_size, orphan_events)
    _in_batches(session, OneTimeCode.id, _old_code(cutoff), batch_size, codes)
    _in_batches(session, CallAction.id, _old_action(cutoff), batch_size, actions)
    _in_batches(session, WebhookEvent.id, _old_webhook_event(cutoff), batch_size, webhook_events)
    return counts


def _in_batches(
    session: Session,
    id_column: InstrumentedAttribute[int],
    old: ColumnElement[bool],
    batch_size: int,
    delete_batch: Callable[[Sequence[int]], None],
) -> None:
    """Delete the rows matching `old`, `batch_size` at a time, a transaction each.

    The batch is found by a plain read (a scan, maybe slow); the write lock is
    taken only to check those rows by their keys again (one may have come back
    to life meanwhile: a new event for its call) and delete them.
    """
    while True:
        found = list(session.scalars(select(id_column).where(old).limit(batch_size)))
        session.rollback()
        if not found:
            return
        begin_write(session)
        batch = list(session.scalars(select(id_column).where(id_column.in_(found), old)))
        if batch:
            delete_batch(batch)
        session.commit()


def _delete(session: Session, model: type[Base], where: ColumnElement[bool]) -> int:
    """Delete `model`'s rows matching `where`; how many went."""
    stmt = delete(model).where(where)
    result = session.execute(stmt, execution_options={"synchronize_session": False})
    return int(result.rowcount)  # type: ignore[attr-defined]
