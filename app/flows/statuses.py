"""Call status reports from platforms: status callbacks and hang-up events.

Each report is kept once (its key: platform, call id, status and leg, claimed
atomically by a unique insert), every distinct report of a call is kept, and
the call's `platform_status` only moves forward: a late "ringing" never undoes
"completed".

DIDforSale reports a call nobody answered as `completed`, like one that was
answered: only the leg's reports tell them apart. So a report is read with the
reports stored before it, whatever order they came in: a leg that completed
with no `answered` report is "no-answer", and an `answered` that arrives after
its `completed` makes it "completed" again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import begin_write
from app.db.driver import DriverStatement
from app.flows import turn_store
from app.flows.runner import Kept, delivery_key
from app.logs import bind_action, bind_call
from app.models import Call, CallAction, CallEvent, utcnow

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
# The second party's leg failing, as the action shows it (first found wins).
LEG_FAILED = ("busy", "no_answer", "failed")
ACTION_RANK: Mapping[str, int] = {
    "queued": 0, "scheduled": 0, "retrying": 0, "unknown": 0, "calling": 1, "ringing": 2,
    "connected": 3, "completed": 4, "busy": 4, "no_answer": 4, "failed": 4,
    "cancelled": FINAL_RANK + 1,  # what Glue was asked for: no report replaces it
    "refused": FINAL_RANK + 1,  # never sent: no report is about it
}  # fmt: skip
ANSWERED = frozenset({"answered", "in-progress"})
NO_FLOW = "-"  # the flow of a call Glue knows only from status reports
# Platforms whose `completed` also ends a call nobody answered: DIDforSale has no
# other final status. Twilio says `no-answer` itself.
COMPLETED_UNANSWERED = frozenset({"didml"})
# A leg's final statuses, in the order one decides (a leg has only one in practice).
LEG_FINALS = ("busy", "no-answer", "failed", "canceled", "completed")
# The status reports stored of a call, and of every call of a click-to-call action.
# The calls are a UNION of two key lookups, not an OR: given an OR, SQLite's
# planner (once ANALYZE has run) scans every event instead.
STORED_REPORTS = DriverStatement(
    select(CallEvent.call_id, CallEvent.outcome, CallEvent.payload)
    .where(
        CallEvent.kind == "status",
        CallEvent.call_id.in_(
            union_all(
                select(Call.id).where(Call.id == bindparam("call_row")),
                select(Call.id).where(Call.action_id == bindparam("action")),
            )
        ),
    )
    .order_by(CallEvent.id)
)

# One report as the leg reading needs it: the call's row, the leg, the status.
Reported = tuple[int, str, str]


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
    connection: Connection,
    sessions: Callable[[Connection], Session],
    report: StatusReport,
    kept: Kept,
    secret: str,
    request_id: str,
    started: float | None = None,
) -> bool:
    """Store a status report once; False if this exact report was stored before.

    `started` (time.perf_counter()) times the request in its stored event. A
    report of a click-to-call action changes the action through `sessions`
    (a session in charge of the connection's transaction), whose listeners
    write its webhook events. On an error the caller rolls the connection back."""
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
            # The action, if any, changes through a session, which commits the report.
            session = sessions(connection) if report.action_id is not None else None
            with session or nullcontext():  # closed, it rolls back what it joined
                _store(connection, session, report, kept, key, request_id, started)
            return True
        except IntegrityError:
            connection.rollback()
            seen = connection.scalar(select(CallEvent.id).where(CallEvent.dedupe_key == key))
            connection.rollback()
            if seen is not None:
                return False
    raise RuntimeError(f"could not store status {report.status} of call {report.call_id}")


def _store(
    connection: Connection,
    session: Session | None,
    report: StatusReport,
    kept: Kept,
    key: str,
    request_id: str,
    started: float | None,
) -> None:
    begin_write(connection)
    # A call Glue did not run a flow for (an outbound leg, say) is kept anyway.
    call = turn_store.lock_call(
        connection,
        report.platform,
        report.call_id,
        (report.caller or "")[:32] or None,
        NO_FLOW,
        utcnow(),
    )
    bind_call(call.id)
    unanswered_completes = report.platform in COMPLETED_UNANSWERED
    # Locked before the reports are read: the other leg's reports, stored by
    # another request, are then all in (it held the lock until it committed).
    action = (
        session.get(CallAction, report.action_id, with_for_update=True)
        if session is not None
        else None
    )
    # This report is read with the others, as it will be stored.
    here = (call.id, _leg(kept.fields))
    reports: list[Reported] = [(*here, report.status)]
    if action is not None or (unanswered_completes and report.status in ANSWERED | {"completed"}):
        reports = _stored_reports(connection, call.id, report.action_id) + reports
    if call.flow != NO_FLOW:
        # Glue ran its flow: the platform fetched the call's voice document, which
        # it does once the call is answered.
        reports.append((call.id, "", "answered"))
    this_leg = {status for row, leg, status in reports if (row, leg) == here}
    status = _read_status(report.status, this_leg, unanswered_completes)
    changes: dict[str, Any] = {}
    if _moves_on(RANK, call.platform_status or "", status, read=status != report.status):
        changes["platform_status"] = status
    if report.duration_seconds is not None:
        changes["duration_seconds"] = report.duration_seconds
    if report.recording_url:
        changes["recording_url"] = report.recording_url[:500]
    if RANK.get(status) == FINAL_RANK and call.ended_at is None:
        changes["status"], changes["ended_at"] = "ended", utcnow()
    if action is not None:
        bind_action(action.id)
        _advance_action(action, reports, unanswered_completes)
        if action.id != call.action_id:
            changes["action_id"] = action.id
    # Stored last: a copy of a stored report fails here on its key, and is undone.
    turn_store.store_event(
        connection,
        call_id=call.id,
        platform=report.platform,
        kind="status",
        dedupe_key=key,
        request_id=request_id,
        payload=kept.fields,
        notes=kept.notes,
        outcome=report.status,
        reply=None,
        call_changes=changes | {"updated_at": utcnow()} if changes else None,
        duration_ms=None if started is None else round((time.perf_counter() - started) * 1000),
    )
    if session is not None:
        session.commit()
    else:
        connection.commit()


def _advance_action(
    action: CallAction, reports: Sequence[Reported], unanswered_completes: bool
) -> None:
    """Move the click-to-call action on (never back) as its calls' reports read:
    its page shows the progress. One final status may give way to another the
    reports read better (an `answered` that came late, the other leg's failure)."""
    status = _action_status(reports, unanswered_completes)
    if status and _moves_on(ACTION_RANK, action.status, status, read=True):
        action.status = status


def _action_status(reports: Sequence[Reported], unanswered_completes: bool) -> str | None:
    """The action's status from its legs. The call itself (no parent) says how far
    it got. The second party's leg counts when it failed (the person called did
    not answer: the caller hears that), and when it ended after being answered
    (the conversation is over, whenever the first leg's report comes)."""
    legs: dict[tuple[int, str], set[str]] = {}
    for row, leg, reported in reports:
        legs.setdefault((row, leg), set()).add(reported)
    first = [_leg_status(s, unanswered_completes) for (_, leg), s in legs.items() if not leg]
    second = {_leg_status(s, unanswered_completes) for (_, leg), s in legs.items() if leg}
    status = max(filter(None, first), key=ACTION_RANK.__getitem__, default=None)
    if not {"connected", "completed"} & second:
        failure = next((s for s in LEG_FAILED if s in second), None)
        if failure:
            return failure
    if "completed" in second and ACTION_RANK.get(status or "", 0) < FINAL_RANK:
        return "completed"
    return status


def _leg_status(statuses: Collection[str], unanswered_completes: bool) -> str | None:
    """One leg's status for the action, from all of its reports."""
    for final in LEG_FINALS:
        if final in statuses:
            if final == "completed" and unanswered_completes and ANSWERED.isdisjoint(statuses):
                return "no_answer"
            return ACTION_STATUS[final]
    progress = [ACTION_STATUS[s] for s in statuses if s in ACTION_STATUS]
    return max(progress, key=ACTION_RANK.__getitem__, default=None)


def _read_status(status: str, leg_statuses: Collection[str], unanswered_completes: bool) -> str:
    """A report's status for the call's row, read with its leg's other reports."""
    if unanswered_completes:
        if status == "completed" and ANSWERED.isdisjoint(leg_statuses):
            return "no-answer"  # it ended without ever being answered
        if status in ANSWERED and "completed" in leg_statuses:
            return "completed"  # the `answered` came after the `completed`
    return status


def _moves_on(rank: Mapping[str, int], current: str, new: str, *, read: bool) -> bool:
    """Forward only; between two final statuses, only to one the reports read."""
    before, after = rank.get(current, -1), rank.get(new, -1)
    return after > before or (read and after == before == FINAL_RANK and new != current)


def _stored_reports(connection: Connection, call_row: int, action: int | None) -> list[Reported]:
    rows = STORED_REPORTS.rows(connection, {"call_row": call_row, "action": action})
    return [(row, _leg(payload or {}), outcome or "") for row, outcome, payload in rows]


def _leg(payload: Mapping[str, Any]) -> str:
    """The parent call a report names, as stored: "" for the call itself."""
    return str(payload.get("ParentCallSid") or "")
