"""Click-to-call as domain operations over a database session (no Flask).

A call is recorded as a `CallAction` before anything is sent; a job worker then
places it through the configured provider and records the answer. What may be
retried is decided here: a clear refusal before the call was placed may be
tried again later; an ambiguous failure (a timeout or a 5xx after sending) is
recorded and never retried, because the call may already have rung someone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import begin_write
from app.models import CallAction, Group, PhoneNumber, User
from app.neutral.phones import PhoneError, to_e164
from app.outbound.providers.base import CallRequest, CallResult, InvalidCallRequest, Provider

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
FINAL_STATUSES = frozenset({"no_answer", "busy", "failed", "completed"})
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


def add_phone(session: Session, user: User, raw: str, region: str) -> str:
    """Store a phone the user typed (validated, E.164, not anyone else's)."""
    e164, owner = _usable_number(session, user, raw, region)
    if owner is None:
        user.phones.append(PhoneNumber(e164=e164))
    return e164


def set_phone(session: Session, user: User, raw: str, region: str) -> str:
    """Make `raw` the user's phone rung first, replacing any on file (unconfirmed)."""
    e164, owner = _usable_number(session, user, raw, region)
    if owner is not None:  # already theirs: it stays, the others go
        user.phones[:] = [owner]
        return e164
    user.phones.clear()
    session.flush()  # the old numbers go before the new one is added
    user.phones.append(PhoneNumber(e164=e164))
    return e164


def _usable_number(
    session: Session, user: User, raw: str, region: str
) -> tuple[str, PhoneNumber | None]:
    """`raw` in E.164, and its row if it is already the user's own; refused if
    it is not a valid number or is someone else's."""
    try:
        e164 = to_e164(raw, region)
    except PhoneError as exc:
        raise CallError(str(exc)) from None
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
) -> CallAction:
    """The action, recorded (queued) before anything is sent. Caller commits."""
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
        status="queued",
        provider_call_ids=[],
    )
    session.add(action)
    return action


def record_verification_call(
    session: Session, user: User, phone: str, provider: str, via: str, purpose: str
) -> CallAction:
    """A call to the user's own phone that verifies them: `verify_phone` reads a
    one-time code (see app/outbound/codes.py); `verify_survo` runs the verification
    flow's SurVo (IfbyPhone click-to-SurVo). Recorded queued; caller commits."""
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
    session.add(action)
    return action


def place(
    session: Session,
    action_id: int,
    provider: Provider,
    request_for: Callable[[CallAction], CallRequest],
    max_attempts: int,
) -> bool:
    """Place a queued action through `provider`; True if it should be tried again.

    The attempt is committed as `calling` before the provider is asked, so a
    worker that dies mid-call leaves a trace, and a second delivery of the same
    job finds the action no longer queued and does nothing.
    """
    begin_write(session)
    action = session.get(CallAction, action_id, with_for_update=True)
    if action is None or action.status not in ("queued", "retrying"):
        session.rollback()
        return False
    action.status = "calling"
    action.attempts += 1
    try:
        request = request_for(action)
        session.commit()
        result = provider.place_call(request)
    except InvalidCallRequest as exc:
        # Refused by our own checks before sending: nothing was placed.
        action.status, action.detail = "failed", f"not sent: {exc}"[:500]
        session.commit()
        return False
    except Exception as exc:
        # Anything else on the way may have happened after sending: never retried.
        session.rollback()
        action = session.get(CallAction, action_id, populate_existing=True)
        assert action is not None
        action.status, action.detail = "unknown", f"error while placing: {type(exc).__name__}"
        session.commit()
        raise
    retry = result.may_retry and action.attempts < max_attempts
    _apply(action, result, retry)
    session.commit()
    return retry


def fail_unplaced(session: Session, action_id: int, detail: str) -> None:
    """Mark failed an action that was never sent (the queue is down, the provider
    is not usable), rather than leave it waiting as `queued` for ever."""
    session.rollback()
    begin_write(session)
    action = session.get(CallAction, action_id, with_for_update=True, populate_existing=True)
    if action is not None and action.status in ("queued", "retrying"):
        action.status, action.detail = "failed", detail[:500]
    session.commit()


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
        "created_at": action.created_at.isoformat() + "Z",
        "updated_at": action.updated_at.isoformat() + "Z",
        "statuses": [
            {"status": event.outcome, "at": event.received_at.isoformat() + "Z"}
            for call in action.calls
            for event in call.events
            if event.kind == "status"
        ],
    }
