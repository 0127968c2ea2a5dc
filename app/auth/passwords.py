"""Web sign-in passwords: argon2id hashes (argon2-cffi), checked in constant time.

A sign-in with an unknown account, a disabled one or one without a password
still verifies the password against a decoy hash, so the answer and its timing
do not tell which account numbers exist.
"""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import User

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work per request

_hasher = PasswordHasher()


class PasswordError(ValueError):
    """A password that breaks the policy."""


def check_policy(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password must be at most {MAX_LENGTH} characters")
    if not _is_text(password):  # bytes a shell passed that were not UTF-8
        raise PasswordError("the password must be UTF-8 text")
    return password


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def hash_password(password: str) -> str:
    """The stored form of a password that meets the policy."""
    return _hasher.hash(check_policy(password))


def looks_like_hash(value: str) -> bool:
    """An argon2 hash as hash_password writes it (an export's `password_hash`)."""
    return value.startswith("$argon2") and len(value) <= 255


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with no stored hash, spend the same work on a decoy."""
    try:
        return _hasher.verify(stored or _decoy(), password[:MAX_LENGTH]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, account: str, password: str) -> User | None:
    """The active user with this account number and password, else None (same work either way)."""
    user = session.scalar(select(User).where(User.account_number == account.strip()))
    stored = user.password_hash if user is not None and user.active else None
    if not verify_password(stored, password) or user is None or stored is None:
        return None
    return user


@cache
def _decoy() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))
