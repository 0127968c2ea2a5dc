"""One-time codes read to a user over the phone, to prove they hold that phone.

A code is 6 digits, single use, valid 10 minutes, with 5 tries (NIST SP 800-63B
out-of-band codes; Twilio Verify's limits). Neither the code nor the token of
the voice document that reads it is stored: both are derived from a random seed
with the server's PIN key, so the database alone reveals neither. The voice
document (`/calls/voice/<id>/<token>`) reads the code once: only the provider of
the call is given its URL. A new code for a user ends the ones still open.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.directory.pins import PinHasher
from app.models import CallAction, OneTimeCode, PhoneNumber, User, utcnow

CODE_DIGITS = 6
VALID_FOR = timedelta(minutes=10)
TRIES = 5

CheckOutcome = Literal["confirmed", "wrong", "expired", "used", "no_tries", "unknown"]


@dataclass(frozen=True)
class IssuedCode:
    record: OneTimeCode
    code: str  # in clear only here, to be read out on the call; never stored


def issue(
    session: Session, hasher: PinHasher, user: User, phone: str, action: CallAction | None = None
) -> IssuedCode:
    """A new code for `user` to confirm `phone` (E.164), read out by `action`'s
    call; the user's codes still open are ended. Caller commits."""
    now = utcnow()
    session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.used_at.is_(None))
        .values(expires_at=now)
    )
    record = OneTimeCode(
        user_id=user.id,
        phone=phone,
        action_id=action.id if action else None,
        seed=secrets.token_hex(32),
        expires_at=now + VALID_FOR,
        tries_left=TRIES,
    )
    session.add(record)
    return IssuedCode(record, code_of(hasher, record))


def code_of(hasher: PinHasher, record: OneTimeCode) -> str:
    number = int.from_bytes(hasher.derive("code", record.seed), "big")
    return str(number % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def token_of(hasher: PinHasher, record: OneTimeCode) -> str:
    """The secret part of the voice document's URL."""
    return base64.urlsafe_b64encode(hasher.derive("voice", record.seed)).decode().rstrip("=")


def check(
    session: Session, hasher: PinHasher, user: User, code_id: int, typed: str
) -> CheckOutcome:
    """Check what the user typed; on success the phone is stored as theirs, confirmed.

    Each try is taken with a conditional UPDATE, so concurrent tries cannot use
    more than the tries left, and a code confirms once.
    """
    begin_write(session)
    now = utcnow()
    record = session.scalar(
        select(OneTimeCode).where(OneTimeCode.id == code_id, OneTimeCode.user_id == user.id)
    )
    if record is None:
        return "unknown"
    if record.used_at is not None:
        return "used"
    if record.expires_at <= now:
        return "expired"
    taken = session.execute(
        update(OneTimeCode)
        .where(
            OneTimeCode.id == record.id,
            OneTimeCode.tries_left > 0,
            OneTimeCode.used_at.is_(None),
        )
        .values(tries_left=OneTimeCode.tries_left - 1)
        .returning(OneTimeCode.tries_left)
    ).one_or_none()
    if taken is None:
        return "no_tries"
    if not hmac.compare_digest(typed.strip().encode(), code_of(hasher, record).encode()):
        if taken.tries_left == 0:  # that was the last try: the verification failed
            _verification_ended(session, record, "failed")
        return "wrong"
    session.execute(update(OneTimeCode).where(OneTimeCode.id == record.id).values(used_at=now))
    phone = session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == record.phone))
    if phone is None:
        session.add(PhoneNumber(e164=record.phone, user_id=user.id, confirmed_at=now))
    elif phone.user_id == user.id:
        phone.confirmed_at = now
    else:
        return "unknown"  # the number went to someone else meanwhile
    _verification_ended(session, record, "confirmed")
    return "confirmed"


def _verification_ended(session: Session, record: OneTimeCode, result: str) -> None:
    """The code's call learns how its verification ended (shown by the API, and
    announced to a webhook)."""
    action = session.get(CallAction, record.action_id) if record.action_id else None
    if action is not None:
        action.verification = result


def for_action(session: Session, action_id: int) -> OneTimeCode | None:
    return session.scalar(select(OneTimeCode).where(OneTimeCode.action_id == action_id))


def read_once(session: Session, hasher: PinHasher, code_id: int, token: str) -> str | None:
    """The code for a voice document's URL, if it may still be read.

    Marked read by one conditional UPDATE, so of two fetches at once (anyone
    replaying the URL) only one gets the code.
    """
    begin_write(session)
    record = session.get(OneTimeCode, code_id)
    if record is None or not hmac.compare_digest(token.encode(), token_of(hasher, record).encode()):
        return None
    now = utcnow()
    read = session.execute(
        update(OneTimeCode)
        .where(
            OneTimeCode.id == code_id,
            OneTimeCode.read_at.is_(None),
            OneTimeCode.used_at.is_(None),
            OneTimeCode.expires_at > now,
        )
        .values(read_at=now)
        .returning(OneTimeCode.id)
    ).one_or_none()
    return code_of(hasher, record) if read is not None else None
