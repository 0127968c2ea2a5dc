"""The link between a verification call Glue placed and the turns of that call.

A click-to-SurVo verification call (`verify_survo`, see app/outbound) runs the
verification flow on the user's own phone; the SurVo's answers come back to the
platform hook like any caller's. What ties them to the request is the
pass-through Glue gave the platform, `action|<id>||sig|<token>`: the token is
derived from the action's id and user with the server's PIN key, so nobody
without the key can make one up or move one to another action.

The token is a secret of the call's: it is sent to the platform as it is, and
kept nowhere (`SECRET_KEYS`, `hide_token`): not in the action's parameters
sent, the call's events, nor the log.

The first call that brings a valid token is bound to the action (its row's
`action_id`), and every later turn of that call reads the binding, not the
pass-through (Glue's own replies rewrite it). A token brought again by another
call, or older than LINK_VALID_FOR, binds nothing. While a call is bound, its
checks verify the action's user only (`Verifier.verify(..., for_user=...)`).
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from app.directory.pins import PinHasher
from app.models import Call, CallAction, utcnow
from app.neutral.turn import MAX_ID, read_number

PURPOSE = "verify_survo"
# A call is placed within minutes of its request (a refused one is retried after
# 30 s, then 60 s) and its SurVo answers within minutes of that: a token older
# than this is a replay, not the call.
LINK_VALID_FOR = timedelta(hours=1)
TOKEN = "sig"  # the pass-through key of the token
SECRET_KEYS = frozenset({TOKEN})
MASK = "***"
# The token's value in a pass-through text, `key|value||key|value`: up to the
# next `||`, as the pass-through is read.
_TOKEN_VALUE = re.compile(rf"((?:^|\|\|){TOKEN}\|)(?:(?!\|\|).)*", re.DOTALL)

log = logging.getLogger(__name__)

ACTIONS = cast(Table, CallAction.__table__)
# What a turn reads of an action to link its call.
LINKED = select(
    ACTIONS.c.id, ACTIONS.c.purpose, ACTIONS.c.provider, ACTIONS.c.user_id, ACTIONS.c.created_at
)


@dataclass(frozen=True)
class VerificationRequest:
    """A verification call Glue placed: its action and the user it was placed for."""

    action_id: int
    user_id: int


def pass_through(hasher: PinHasher, action: CallAction) -> dict[str, str]:
    """What Glue gives the platform to bring back with the call's first answers."""
    return {"action": str(action.id), TOKEN: _token(hasher, action.id, action.user_id)}


def hide_token(text: str) -> str:
    """A pass-through text as kept: `action|<id>||sig|***`."""
    return _TOKEN_VALUE.sub(rf"\1{MASK}", text) if f"{TOKEN}|" in text else text


def _token(hasher: PinHasher, action_id: int, user_id: int) -> str:
    digest = hasher.derive(PURPOSE, f"{action_id}:{user_id}")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def bind(
    connection: Connection,
    hasher: PinHasher,
    call_id: int,
    platform: str,
    brought: Mapping[str, str],
) -> VerificationRequest | None:
    """The verification request a call's pass-through names, if its token is
    Glue's, still valid and not brought by another call first; else None.

    The action's row is locked until the turn commits (it binds the call), so
    of two calls bringing the same token at once only the first is bound.
    """
    named = brought.get("action", "")
    if not named:
        return None
    # Past the id column's INTEGER the database would refuse the lookup.
    action_id = read_number(named, MAX_ID)
    if action_id is None:
        log.warning("call %s: pass-through names no verification call: not linked", call_id)
        return None
    action = _action(connection, action_id, lock=True)
    if action is None or action.purpose != PURPOSE or action.provider != platform:
        log.warning("call %s: pass-through names no verification call: not linked", call_id)
        return None
    token = _token(hasher, action.id, action.user_id)
    if not hmac.compare_digest(brought.get(TOKEN, "").encode(), token.encode()):
        log.warning(
            "call %s: verification call %s named without its token: not linked", call_id, action.id
        )
        return None
    if utcnow() - action.created_at > LINK_VALID_FOR:
        log.warning("call %s: verification call %s is too old to link", call_id, action.id)
        return None
    taken = connection.scalar(
        select(Call.id).where(Call.action_id == action.id, Call.id != call_id).limit(1)
    )
    if taken is not None:
        log.warning(
            "call %s: verification call %s is already call %s: not linked",
            call_id,
            action.id,
            taken,
        )
        return None
    return VerificationRequest(action.id, action.user_id)


def bound(connection: Connection, action_id: int, platform: str) -> VerificationRequest | None:
    """The verification request a call is bound to, if its action is one placed
    on this platform (a call may also be an action's for other reasons)."""
    action = _action(connection, action_id)
    if action is None or action.purpose != PURPOSE or action.provider != platform:
        return None
    return VerificationRequest(action.id, action.user_id)


def report(session: Session, request: VerificationRequest, outcome: str) -> None:
    """The request learns how the check ended (verified, failed, locked, no_input):
    through the ORM, so that the session's listeners write its webhook event."""
    action = session.get(CallAction, request.action_id)
    if action is not None:
        action.verification = outcome


def _action(connection: Connection, action_id: int, lock: bool = False) -> Any:
    """The action's row as a link reads it, or None; `lock`: locked until the
    turn commits, FOR KEY SHARE (a call row referring to it may be written)."""
    statement = LINKED.where(ACTIONS.c.id == action_id)
    if lock:
        statement = statement.with_for_update(key_share=True)
    return connection.execute(statement).first()
