"""Click-to-call as domain operations over a database session (no Flask).

A call is recorded as a `CallAction` before anything is sent; a job worker then
places it through the configured provider and records the answer. What may be
retried is decided here: a clear refusal before the call was placed may be
tried again later; an ambiguous failure (a timeout or a 5xx after sending) is
recorded and never retried, because the call may already have rung someone.
Every number a call would ring is checked against the destination policy
(app/outbound/destinations.py) when the call is recorded and again just before
it is sent; a refused call is recorded `refused`, with the reason, and never sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.metrics import instruments as metrics
from app.models import CallAction, Group, PhoneNumber, User, utcnow
from app.neutral.phones import PhoneError, to_e164
from app.outbound import webhooks
from app.outbound.destinations import DestinationPolicy, first_refusal
from app.outbound.providers import make_provider
from app.outbound.providers.base import (
    CallRequest,
    CallResult,
    InvalidCallRequest,
    Outcome,
    Provider,
)

TargetKind = Literal["originator", "user", "group", "number"]
TARGET_KINDS: tuple[str, ...] = ("originator", "user", "group", "number")

# A provider's answer, as the status a person sees.
STATUS_OF_OUTCOME: Mapping[str, str] = {
    "connected": "connected",
    "no_answer": "no_answer",
    "busy": "busy",
    "accepted": "calling",  # placed: status callbacks tell the rest
    "refused": "failed",
    # Maybe placed, maybe not: never retried; status callbacks may still tell.
    "ambiguous": "unknown",
}
# Statuses after which nothing more happens to an action.
FINAL_STATUSES = frozenset({"no_answer", "busy", "failed", "completed", "refused", "cancelled"})
# Statuses of an action not (or not yet again) sent to the provider: the job
# claims it from one of these, and a cancel withdraws it with nothing sent.
UNSENT_STATUSES = ("queued", "scheduled", "retrying")
NOTHING_SENT = "cancelled before it was placed: nothing was sent to the provider"
# Providers whose status callbacks follow a call past `connected` to `completed`;
# for the others, the answer "connected" is the last word.
REPORTING_PROVIDERS = frozenset({"didforsale", "twilio", "sandbox"})


def is_final(action: CallAction) -> bool:
    """Whether nothing more will happen to the action (its page stops watching)."""
    if action.status in ("connected", "unknown"):
        return action.provider not in REPORTING_PROVIDERS
    return action.status in FINAL_STATUSES


class CallError(ValueError):
    """A call that cannot be started: an unknown target, a bad number, ..."""


class NeedsPhone(CallError):
    """The user has no phone on file: ask for one first."""


class DestinationRefused(CallError):
    """A number the destination policy does not let Glue call."""


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    number: str  # E.164
    user_id: int | None = None
    group_id: int | None = None
    label: str = ""


def resolve_target(
    session: Session, kind: str, value: str | None, originator: str, region: str
) -> Target:
    """Who to connect the caller to: the originator, a user, a group or a number."""
    if kind == "originator":
        if not originator:
            raise CallError("no originator number is configured")
        return Target("originator", originator, label="the originator")
    if kind == "user":
        user = session.scalar(select(User).where(User.account_number == (value or "")))
        if user is None or not user.active:
            raise CallError(f"no user {value}")
        number = _first_phone(user.phones, user.name)
        return Target("user", number, user_id=user.id, label=user.name)
    if kind == "group":
        group = session.scalar(select(Group).where(Group.group_number == (value or "")))
        if group is None or not group.active:
            raise CallError(f"no group {value}")
        number = _first_phone(group.phones, group.name)
        return Target("group", number, group_id=group.id, label=group.name)
    if kind == "number":
        try:
            return Target("number", to_e164(value or "", region), label=value or "")
        except PhoneError as exc:
            raise CallError(str(exc)) from None
    raise CallError(f"unknown target {kind!r}: one of {', '.join(TARGET_KINDS)}")


def _first_phone(phones: list[PhoneNumber], name: str) -> str:
    if not phones:
        raise CallError(f"{name} has no phone on file")
    return phones[0].e164


def add_phone(
    session: Session, user: User, raw: str, region: str, *, policy: DestinationPolicy
) -> str:
    """Store a phone the user typed (validated, E.164, callable, not anyone else's)."""
    e164, owner = _usable_number(session, user, raw, region, policy)
    if owner is None:
        user.phones.append(PhoneNumber(e164=e164))
    return e164


def set_phone(
    session: Session, user: User, raw: str, region: str, *, policy: DestinationPolicy
) -> str:
    """Make `raw` the user's phone rung first, replacing any on file (unconfirmed)."""
    e164, owner = _usable_number(session, user, raw, region, policy)
    if owner is not None:  # already theirs: it stays, the others go
        user.phones[:] = [owner]
        return e164
    user.phones.clear()
    session.flush()  # the old numbers go before the new one is added
    user.phones.append(PhoneNumber(e164=e164))
    return e164


def _usable_number(
    session: Session, user: User, raw: str, region: str, policy: DestinationPolicy
) -> tuple[str, PhoneNumber | None]:
    """`raw` in E.164, and its row if it is already the user's own; refused if
    it is not a valid number, Glue may not call it (it would ring it first on
    every call), or it is someone else's."""
    try:
        e164 = to_e164(raw, region)
    except PhoneError as exc:
        raise CallError(str(exc)) from None
    reason = policy.refusal(e164)
    if reason is not None:
        raise DestinationRefused(f"Glue cannot call {e164}: {reason}")
    owner = session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == e164))
    if owner is not None and owner.user_id != user.id:
        raise CallError("that number is registered to someone else")
    return e164, owner


def record_call(
    session: Session,
    user: User,
    target: Target,
    provider: str,
    via: str,
    purpose: str = "connect",
    *,
    policy: DestinationPolicy,
    at: datetime | None = None,
) -> CallAction:
    """The action, recorded before anything is sent: queued (or scheduled for
    `at`, timezone-aware), or `refused` with the reason if the policy refuses a
    number it would ring (the caller commits, and queues only a queued one)."""
    if not user.phones:
        raise NeedsPhone("no phone on file")
    action = CallAction(
        user=user,
        via=via,
        purpose=purpose,
        target_kind=target.kind,
        target_user_id=target.user_id,
        target_group_id=target.group_id,
        from_number=user.phones[0].e164,
        to_number=target.number,
        provider=provider,
        status="queued" if at is None else "scheduled",
        scheduled_for=None if at is None else at.astimezone(UTC).replace(tzinfo=None),
        provider_call_ids=[],
    )
    _refuse_if_not_callable(action, policy, [action.from_number, action.to_number])
    session.add(action)
    return action


def schedule_time(value: object, now: datetime, max_days: int) -> datetime:
    """When a scheduled call is placed: `value`, ISO 8601 with a UTC offset, in
    the future and at most `max_days` from `now` (timezone-aware); CallError if not."""
    if not isinstance(value, str):
        raise CallError("at must be an ISO 8601 date and time with an offset")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise CallError(f"at is not an ISO 8601 date and time: {value[:40]!r}") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise CallError("at needs a UTC offset (2026-12-07T15:00:00+01:00, or Z)")
    if at <= now:
        raise CallError("at must be in the future")
    if at > now + timedelta(days=max_days):
        raise CallError(f"at must be within {max_days} days")
    return at


def record_verification_call(
    session: Session,
    user: User,
    phone: str,
    provider: str,
    via: str,
    purpose: str,
    *,
    policy: DestinationPolicy,
) -> CallAction:
    """A call to the user's own phone that verifies them: `verify_phone` reads a
    one-time code (see app/outbound/codes.py); `verify_survo` runs the verification
    flow's SurVo (IfbyPhone click-to-SurVo). Recorded queued, or `refused` as in
    `record_call`; caller commits."""
    action = CallAction(
        user=user,
        via=via,
        purpose=purpose,
        target_kind="number",
        from_number=phone,
        to_number=None,
        provider=provider,
        status="queued",
        provider_call_ids=[],
    )
    _refuse_if_not_callable(action, policy, [phone])
    session.add(action)
    return action


def is_refused(action: CallAction) -> bool:
    """Whether the destination policy refused the action (nothing was or will be sent)."""
    return action.status == "refused"


def _refuse_if_not_callable(
    action: CallAction, policy: DestinationPolicy, numbers: list[str | None]
) -> bool:
    reason = first_refusal(policy, numbers)
    if reason is None:
        return False
    action.status, action.detail = "refused", reason[:500]
    return True


def place(
    session: Session,
    action_id: int,
    provider: Provider,
    request_for: Callable[[CallAction], CallRequest],
    max_attempts: int,
    *,
    policy: DestinationPolicy,
) -> bool:
    """Place a queued action through `provider`; True if it should be tried again.

    The attempt is committed as `calling` before the provider is asked, so a
    worker that dies mid-call leaves a trace, and a second delivery of the same
    job finds the action no longer queued and does nothing. The numbers the
    action would ring are checked against `policy` first (it may have changed
    since the call was recorded): a refused action is recorded `refused`, not sent.
    """
    begin_write(session)
    # Claimed by a conditional update: a cancel (see cancel) withdraws the same
    # row by one too, and whichever comes first wins. A scheduled action is
    # claimed only once its time has come.
    claimed = session.execute(
        update(CallAction)
        .where(
            CallAction.id == action_id,
            CallAction.status.in_(UNSENT_STATUSES),
            or_(CallAction.scheduled_for.is_(None), CallAction.scheduled_for <= utcnow()),
        )
        .values(status="calling", attempts=CallAction.attempts + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return False
    webhooks.note_action(session, action_id)
    action = session.get(CallAction, action_id, populate_existing=True)
    assert action is not None
    provider_name = action.provider
    if _refuse_if_not_callable(action, policy, [action.from_number, action.to_number]):
        action.attempts -= 1  # claimed, but nothing was sent
        session.commit()
        metrics.call_placed(provider_name, "not_sent")
        return False
    try:
        request = request_for(action)
        session.commit()
        result = provider.place_call(request)
    except InvalidCallRequest as exc:
        # Refused by our own checks before sending: nothing was placed.
        action.status, action.detail = "failed", f"not sent: {exc}"[:500]
        session.commit()
        metrics.call_placed(provider_name, "not_sent")
        return False
    except Exception as exc:
        # Anything else on the way may have happened after sending: never retried.
        metrics.call_placed(provider_name, "error")
        session.rollback()
        action = session.get(CallAction, action_id, populate_existing=True)
        assert action is not None
        action.status, action.detail = "unknown", f"error while placing: {type(exc).__name__}"
        session.commit()
        raise
    retry = result.may_retry and action.attempts < max_attempts
    _apply(action, result, retry)
    session.commit()
    metrics.call_placed(provider_name, str(result.outcome))
    return retry


def fail_unplaced(session: Session, action_id: int, detail: str) -> None:
    """Mark failed an action that was never sent (the queue is down, the provider
    is not usable), rather than leave it waiting as `queued` for ever."""
    session.rollback()
    begin_write(session)
    action = session.get(CallAction, action_id, with_for_update=True, populate_existing=True)
    if action is not None and action.status in UNSENT_STATUSES:
        action.status, action.detail = "failed", detail[:500]
    session.commit()


CancelOutcome = Literal["cancelled", "final", "not_cancelled"]


def cancel(
    session: Session, action_id: int, by: str, config: Mapping[str, Any]
) -> tuple[CancelOutcome, CallAction]:
    """Cancel an action for `by` (who asked); what came of it, and the action.

    Not yet sent (queued, scheduled, retrying): withdrawn by a conditional
    update, so a job that has not claimed it never sends it, and one that has
    leaves it in progress. In progress: the provider is asked to end the call,
    where its API has a way to. Already final: nothing changes. Who asked, when
    and what came of it is recorded on the action.
    """
    session.rollback()  # a fresh transaction that writes from the start (SQLite)
    begin_write(session)
    asked = {"cancel_requested_at": utcnow(), "cancel_requested_by": by[:100]}
    withdrawn = session.execute(
        update(CallAction)
        .where(CallAction.id == action_id, CallAction.status.in_(UNSENT_STATUSES))
        .values(status="cancelled", cancel_result=NOTHING_SENT, updated_at=utcnow(), **asked)
        .execution_options(synchronize_session=False)
    )
    webhooks.note_action(session, action_id)
    session.commit()
    action = session.get(CallAction, action_id, populate_existing=True)
    assert action is not None
    if withdrawn.rowcount == 1:  # type: ignore[attr-defined]
        return "cancelled", action
    if is_final(action):
        return "final", action
    # In progress: no transaction is held while the provider is asked.
    ended, result = _end_call(action, config)
    session.rollback()
    begin_write(session)
    record = update(CallAction).where(CallAction.id == action_id)
    session.execute(record.values(cancel_result=result[:200], **asked))
    if ended:  # unless a final status came in the meantime
        not_final = CallAction.status.not_in(FINAL_STATUSES)
        session.execute(record.where(not_final).values(status="cancelled", updated_at=utcnow()))
        webhooks.note_action(session, action_id)
    session.commit()
    action = session.get(CallAction, action_id, populate_existing=True)
    assert action is not None
    return ("cancelled" if action.status == "cancelled" else "not_cancelled"), action


def _end_call(action: CallAction, config: Mapping[str, Any]) -> tuple[bool, str]:
    """Ask the action's provider to end its call: whether it did, and what happened."""
    if not action.provider_call_ids:
        return False, "not ended: the provider has not named the call yet"
    try:
        provider = make_provider(action.provider, config)
    except ValueError as exc:
        return False, f"not ended: the {action.provider} provider is not usable: {exc}"
    try:
        result = provider.cancel(action.provider_call_ids[0])
    except Exception as exc:
        return False, f"not ended: error asking the provider to end it: {type(exc).__name__}"
    finally:
        provider.close()
    if result.outcome is Outcome.ACCEPTED:
        return True, f"ended by the provider: {result.detail}"
    if result.outcome is Outcome.AMBIGUOUS:
        return False, f"no clear answer from the provider: it may have ended: {result.detail}"
    return False, f"provider cannot cancel: {result.detail}"


def _apply(action: CallAction, result: CallResult, retry: bool) -> None:
    action.params_sent = dict(result.sent)
    action.provider_answer = result.raw
    action.provider_call_ids = list(result.provider_call_ids)
    action.status = "retrying" if retry else STATUS_OF_OUTCOME[result.outcome]
    detail = result.detail
    if result.outcome == "ambiguous":
        detail = f"no clear answer from the provider, not retried (it may have rung): {detail}"
    action.detail = detail[:500] if detail else None


def action_view(action: CallAction) -> dict[str, Any]:
    """What a page or an API client may see of an action (no provider secrets)."""
    return {
        "id": action.id,
        "status": action.status,
        "final": is_final(action),
        "target": {"kind": action.target_kind, "number": action.to_number},
        "from": action.from_number,
        "provider": action.provider,
        "detail": action.detail,
        "verification": action.verification,
        "scheduled_for": _iso(action.scheduled_for),
        "cancel": None
        if action.cancel_requested_at is None
        else {
            "requested_at": _iso(action.cancel_requested_at),
            "by": action.cancel_requested_by,
            "result": action.cancel_result,
        },
        "created_at": action.created_at.isoformat() + "Z",
        "updated_at": action.updated_at.isoformat() + "Z",
        "statuses": [
            {"status": event.outcome, "at": event.received_at.isoformat() + "Z"}
            for call in action.calls
            for event in call.events
            if event.kind == "status"
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"
