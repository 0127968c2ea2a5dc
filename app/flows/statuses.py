"""Call status reports from platforms: status callbacks and hang-up events.

Each report is kept once (its key: platform, call id, status and leg, claimed
atomically by a unique insert), every distinct report of a call is kept, and
the call's `platform_status` only moves forward: a late "ringing" never undoes
"completed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import begin_write
from app.flows import turn_store
from app.flows.runner import delivery_key
from app.logs import bind_action, bind_call
from app.models import CallAction, CallEvent, utcnow

# How far along a call is; statuses of equal rank do not replace each other.
RANK: Mapping[str, int] = {
    "queued": 0,
    "calling": 1,
    "initiated": 1,
    "ringing": 2,
    "answered": 3,
    "in-progress": 3,
    "completed": 4,
    "busy": 4,
    "failed": 4,
    "no-answer": 4,
    "canceled": 4,
}
FINAL_RANK = 4
# A call's status, as the status of the click-to-call action that placed it.
ACTION_STATUS: Mapping[str, str] = {
    "initiated": "calling",
    "ringing": "ringing",
    "answered": "connected",
    "in-progress": "connected",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "failed",
}
# The second party's leg: only its failures matter to the caller.
LEG_FAILURES: Mapping[str, str] = {
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "failed",
}
ACTION_RANK: Mapping[str, int] = {
    "queued": 0, "retrying": 0, "unknown": 0, "calling": 1, "ringing": 2,
    "connected": 3, "completed": 4, "busy": 4, "no_answer": 4, "failed": 4,
}  # fmt: skip


@dataclass(frozen=True)
class StatusReport:
    platform: str
    call_id: str  # the platform's id of the call (or of this leg)
    status: str  # one of RANK's keys
    leg: str = ""  # e.g. the parent call id of a B leg; "" for the call itself
    duration_seconds: int | None = None
    recording_url: str | None = None
    caller: str | None = None
    action_id: int | None = None  # the click-to-call action that placed the call


def record_status(
    session: Session,
    report: StatusReport,
    payload: Mapping[str, str],
    secret: str,
    request_id: str,
) -> bool:
    """Store a status report once; False if this exact report was stored before."""
    key = delivery_key(
        secret,
        report.platform,
        "status",
        {"call": report.call_id, "status": report.status, "leg": report.leg},
    )
    # A conflict on the report's key is a copy of a stored report. Any other
    # conflict (a row deleted meanwhile) gets one more try.
    for _ in range(2):
        try:
            _store(session, report, payload, key, request_id)
            return True
        except IntegrityError:
            session.rollback()
            seen = session.scalar(select(CallEvent.id).where(CallEvent.dedupe_key == key))
            session.rollback()
            if seen is not None:
                return False
    raise RuntimeError(f"could not store status {report.status} of call {report.call_id}")


def _store(
    session: Session, report: StatusReport, payload: Mapping[str, str], key: str, request_id: str
) -> None:
    begin_write(session)
    connection = session.connection()
    # A call Glue did not run a flow for (an outbound leg, say) is kept anyway.
    call = turn_store.lock_call(
        connection,
        report.platform,
        report.call_id,
        (report.caller or "")[:32] or None,
        "-",
        utcnow(),
    )
    bind_call(call.id)
    changes: dict[str, Any] = {}
    if RANK.get(report.status, -1) > RANK.get(call.platform_status or "", -1):
        changes["platform_status"] = report.status
    if report.duration_seconds is not None:
        changes["duration_seconds"] = report.duration_seconds
    if report.recording_url:
        changes["recording_url"] = report.recording_url[:500]
    if RANK.get(report.status) == FINAL_RANK and call.ended_at is None:
        changes["status"], changes["ended_at"] = "ended", utcnow()
    if report.action_id is not None:
        action_id = _advance_action(session, report)
        if action_id is not None and action_id != call.action_id:
            changes["action_id"] = action_id
    # Stored last: a copy of a stored report fails here on its key, and is undone.
    turn_store.store_event(
        connection,
        call_id=call.id,
        platform=report.platform,
        kind="status",
        dedupe_key=key,
        request_id=request_id,
        payload=payload,
        outcome=report.status,
        reply=None,
        call_changes=changes | {"updated_at": utcnow()} if changes else None,
    )
    session.commit()


def _advance_action(session: Session, report: StatusReport) -> int | None:
    """Move the click-to-call action on (never back): its page shows the progress.
    Returns the action's id, if it exists."""
    action = session.get(CallAction, report.action_id, with_for_update=True)
    if action is None:
        return None
    bind_action(action.id)
    if report.leg:
        status = LEG_FAILURES.get(report.status)  # the person called did not answer
    else:
        status = ACTION_STATUS.get(report.status)
        if status == "completed" and action.status != "connected" and not report.duration_seconds:
            status = "no_answer"  # it ended without ever being answered
    if status and ACTION_RANK[status] > ACTION_RANK.get(action.status, 0):
        action.status = status
    return action.id
