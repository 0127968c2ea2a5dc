"""Retries that place nothing twice, over a database session (no Flask).

The API: a request that places a call may carry an `Idempotency-Key`. The first
request with a key claims it by inserting (token, key) under a unique
constraint, so of two concurrent retries only one goes on; its answer is stored
on the row, and a retry with the same key and the same request gets that answer
back for KEY_LIFETIME, placing nothing. The same key with another request is
refused. A key still being answered is refused too (retry a moment later).

The web page: each rendered form that places a call carries a one-time nonce,
signed with the app's secret key (so rendering a page writes nothing). Submitting
claims it the same way; a resubmitted form (a double click, a reload, the Back
button) finds the claim and is shown the call the first submit placed.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import begin_write
from app.models import FormNonce, IdempotencyKey, utcnow

KEY_LIFETIME = timedelta(hours=24)
# Visible ASCII, as Stripe and the IETF draft use (a UUID fits well).
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
NONCE_SALT = "glue.call-form"


@dataclass(frozen=True)
class Replay:
    """The first answer to the key, to give again."""

    status: int
    body: Any


Refusal = Literal["other_request", "in_progress"]


def request_hash(method: str, path: str, body: bytes) -> str:
    """What makes two requests the same: method, path, and the body (as JSON
    without regard to key order or spacing, when it is JSON)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, RecursionError):
        canonical = body
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def claim(
    session: Session, token_id: int, key: str, digest: str
) -> IdempotencyKey | Replay | Refusal:
    """Claim `key` for a new request (the row, committed), or what a retry gets:
    the first answer, or a refusal. An expired claim of this token's goes first."""
    session.rollback()
    begin_write(session)
    cutoff = utcnow() - KEY_LIFETIME
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.api_token_id == token_id, IdempotencyKey.created_at < cutoff
        )
    )
    row = IdempotencyKey(api_token_id=token_id, key=key, request_hash=digest)
    session.add(row)
    try:
        session.commit()
        return row
    except IntegrityError:  # claimed already, maybe a moment ago by a concurrent retry
        session.rollback()
    first = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.api_token_id == token_id, IdempotencyKey.key == key
        )
    )
    session.rollback()
    if first is None or first.response_status is None:
        return "in_progress"  # (None: its request failed and let go of it just now)
    if first.request_hash != digest:
        return "other_request"
    return Replay(first.response_status, first.response_body)


def finish(session: Session, row: IdempotencyKey, status: int, body: Any) -> None:
    """Store the answer to the claimed key's request."""
    row_id = row.id
    session.rollback()  # whatever the request left uncommitted was not its answer
    begin_write(session)
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id)
        .values(response_status=status, response_body=body)
    )
    session.commit()


def release(session: Session, row: IdempotencyKey) -> None:
    """Let go of the key: its request failed before it placed anything, and a
    retry with the same key may try again."""
    row_id = row.id
    session.rollback()
    begin_write(session)
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))
    session.commit()


# --- one-time nonces of the web's call forms ----------------------------------


def new_nonce(secret_key: str, user_id: int) -> str:
    """A nonce for one rendered form of this user's."""
    serializer = URLSafeTimedSerializer(secret_key, salt=NONCE_SALT)
    return serializer.dumps([user_id, secrets.token_urlsafe(18)])


def read_nonce(secret_key: str, signed: str, user_id: int) -> str | None:
    """The nonce in a submitted form, if it is this user's and not too old."""
    serializer = URLSafeTimedSerializer(secret_key, salt=NONCE_SALT)
    try:
        owner, nonce = serializer.loads(signed, max_age=int(KEY_LIFETIME.total_seconds()))
    except (BadSignature, ValueError, TypeError):
        return None
    if owner != user_id or not isinstance(nonce, str) or len(nonce) > 64:
        return None
    return nonce


def claim_nonce(session: Session, user_id: int, nonce: str) -> int | Literal["new", "in_progress"]:
    """Claim a submitted form's nonce: "new" when this is its first submit (the
    claim is committed), else the call the first submit placed, or
    "in_progress" while it is still placing it."""
    session.rollback()
    begin_write(session)
    cutoff = utcnow() - KEY_LIFETIME
    session.execute(
        delete(FormNonce).where(FormNonce.user_id == user_id, FormNonce.created_at < cutoff)
    )
    session.add(FormNonce(nonce=nonce, user_id=user_id))
    try:
        session.commit()
        return "new"
    except IntegrityError:
        session.rollback()
    first = session.get(FormNonce, nonce)
    action_id = first.action_id if first is not None and first.user_id == user_id else None
    session.rollback()
    return "in_progress" if action_id is None else action_id


def settle_nonce(session: Session, nonce: str, action_id: int | None) -> None:
    """Record the call the form placed (in the caller's transaction, which
    commits it with the call), or let go of the nonce when it placed none (the
    form may then be submitted again)."""
    begin_write(session)
    if action_id is None:
        session.execute(delete(FormNonce).where(FormNonce.nonce == nonce))
        return
    row = session.get(FormNonce, nonce)
    if row is not None:
        row.action_id = action_id


def purge(session: Session, dry_run: bool = False) -> dict[str, int]:
    """Delete the keys and nonces past KEY_LIFETIME (with `dry_run`, count
    them); how many rows per table."""
    cutoff = utcnow() - KEY_LIFETIME
    tables = {
        "idempotency_keys": (IdempotencyKey, IdempotencyKey.created_at < cutoff),
        "form_nonces": (FormNonce, FormNonce.created_at < cutoff),
    }
    counts = {}
    begin_write(session)
    for name, (model, old) in tables.items():
        if dry_run:
            counts[name] = session.scalar(select(func.count()).select_from(model).where(old)) or 0
        else:
            result = session.execute(delete(model).where(old))
            counts[name] = int(result.rowcount)  # type: ignore[attr-defined]
    session.commit()
    return counts
