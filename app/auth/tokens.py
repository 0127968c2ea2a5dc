"""API tokens for host applications. A token is 32 random bytes shown once;
only its SHA-256 is kept (a keyed hash is not needed for random secrets)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.models import ApiToken, utcnow

PREFIX = "glue_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, name: str) -> str:
    """A new token named `name`; returns it in clear, the only time it is seen."""
    if not name or len(name) > 64:
        raise ValueError("a token's name is 1-64 characters")
    if session.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
        raise ValueError(f"a token named {name} exists")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_digest(token)))
    return token


def authenticate(session: Session, token: str) -> ApiToken | None:
    """The active token matching `token` (looked up by its digest), noting its use.

    One UPDATE finds and stamps it, in a transaction begun as a writer's: on
    SQLite it takes its turn among Glue's writers, even in a GET.
    """
    if not token.startswith(PREFIX) or len(token) > 128:
        return None
    begin_write(session)
    found = session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == _digest(token), ApiToken.active)
        .values(last_used_at=utcnow())
        .returning(ApiToken.id)
    ).scalar_one_or_none()
    return session.get(ApiToken, found) if found is not None else None


def revoke(session: Session, name: str) -> None:
    found = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if found is None:
        raise ValueError(f"no token named {name}")
    found.active = False
