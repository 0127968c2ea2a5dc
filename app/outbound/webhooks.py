"""Webhooks: events about the calls an API token placed, posted to its URL, signed.

An event is written in the same transaction as the change it tells of (an
outbox row), so a change that commits always has its event and one that rolls
back never does; it is queued for delivery once that transaction has
committed. Changes are noticed wherever they are made (the job, the status
callbacks, a verification flow, a cancel) by a listener on the app's sessions:
`watch`. A transaction that leaves an action's status (or its verification's
result) other than the one last announced for it writes one event; a status
replaced within the same transaction was never seen by anyone and sends none.

Each delivery is signed, `Glue-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`, with the token's signing secret. The secret is derived from the
server's PIN key, the token's id and its generation (counted up to rotate it),
so it is never stored: the database alone does not sign. For a day after a
rotation each request carries a second `v1`, by the secret before, so a
receiver can switch over without missing an event.

Delivery is at least once: a 2xx is delivered; anything else, or no answer in
time, is tried again with a growing wait, and every attempt is recorded.
Receivers drop a `Glue-Event-Id` they have seen.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from sqlalchemy import event, func, inspect, or_, select, update
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction, sessionmaker

from app.db import begin_write
from app.directory.pins import PinHasher
from app.models import ApiToken, CallAction, WebhookDelivery, WebhookEvent, utcnow

SIGNATURE_HEADER = "Glue-Signature"
EVENT_ID_HEADER = "Glue-Event-Id"
SECRET_PREFIX = "whsec_"
# How old a signature receivers accept (documented for them; Glue signs each
# attempt afresh, so a retry hours later is still within it).
TOLERANCE_SECONDS = 300
MAX_URL = 2000
EXCERPT = 500  # characters of a receiver's answer kept per attempt
BACKOFF_FACTOR = 3  # each wait is three times the one before
# A pending event whose next attempt is this far past due lost its job (a
# worker died, the queue was down when it was committed): it is queued again.
STRANDED_AFTER = timedelta(minutes=10)
# A delivery holds its event for the attempt's timeout and this much more (to
# record it); a worker that dies holding it leaves it to the sweep.
LEASE_MARGIN = timedelta(seconds=60)
# The attempt recorded when the token's webhook was removed: the event fails.
NO_WEBHOOK = "not sent: the token has no webhook"
# How long the secret before a rotation still signs, beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)

_TOUCHED = "glue.webhook_actions"  # session.info: actions whose status may have changed
_WRITTEN = "glue.webhook_events"  # session.info: events written in this transaction

log = logging.getLogger(__name__)


class WebhookUrlError(ValueError):
    """A URL Glue will not post events to."""


@dataclass(frozen=True)
class WebhookSettings:
    max_attempts: int
    retry_seconds: float
    timeout: float
    allow_http: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WebhookSettings:
        return cls(
            max_attempts=max(1, int(config["WEBHOOK_MAX_ATTEMPTS"])),
            retry_seconds=float(config["WEBHOOK_RETRY_SECONDS"]),
            timeout=float(config["WEBHOOK_TIMEOUT"]),
            allow_http=bool(config["WEBHOOK_ALLOW_HTTP"]),
        )

    def delay_after(self, attempts: int) -> float:
        """Seconds to wait after attempt number `attempts` (1-based)."""
        return self.retry_seconds * BACKOFF_FACTOR ** (attempts - 1)


# --- secrets, signatures, URLs -----------------------------------------------------


def signing_secret(hasher: PinHasher, token: ApiToken, generation: int | None = None) -> str:
    """The token's signing secret, `whsec_...`, derived (never stored): its
    current one, or that of an earlier `generation`."""
    seed = f"{token.id}:{token.webhook_secret_generation if generation is None else generation}"
    digest = hasher.derive("webhook", seed)
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signing_secrets(hasher: PinHasher, token: ApiToken) -> list[str]:
    """The secrets that sign now: the current one, and the one before for
    ROTATION_OVERLAP after a rotation."""
    secrets_now = [signing_secret(hasher, token)]
    rotated = token.webhook_secret_rotated_at
    if rotated is not None and utcnow() - rotated < ROTATION_OVERLAP:
        secrets_now.append(signing_secret(hasher, token, token.webhook_secret_generation - 1))
    return secrets_now


def signature(secrets_now: list[str], timestamp: int, body: str) -> str:
    """The `Glue-Signature` header's value for `body` sent at `timestamp`: one
    `v1` per secret."""
    signed = f"{timestamp}.{body}".encode()
    macs = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets_now]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def check_url(url: str, allow_http: bool) -> str:
    """`url` if Glue may post events to it, else WebhookUrlError saying why."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise WebhookUrlError(f"a webhook URL is 1-{MAX_URL} characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise WebhookUrlError(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookUrlError("a webhook URL is https://host/path")
    if parts.scheme == "http" and not allow_http:
        raise WebhookUrlError("a webhook URL must be https (GLUE_WEBHOOK_ALLOW_HTTP allows http)")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("no user or password in the URL: it is stored and shown")
    if parts.fragment or not all(33 <= ord(c) <= 126 for c in url):
        raise WebhookUrlError(
            "a webhook URL is printable ASCII (percent-encode the rest), with no fragment"
        )
    return url


def set_url(session: Session, name: str, url: str | None, allow_http: bool) -> ApiToken:
    """Send the events of token `name`'s calls to `url` (None: nowhere)."""
    token = token_named(session, name)
    token.webhook_url = None if url is None else check_url(url, allow_http)
    return token


def rotate_secret(session: Session, name: str) -> ApiToken:
    """A new signing secret for token `name`; the old one signs beside it for
    ROTATION_OVERLAP."""
    token = token_named(session, name)
    token.webhook_secret_generation += 1
    token.webhook_secret_rotated_at = utcnow()
    return token


def token_named(session: Session, name: str) -> ApiToken:
    token = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise ValueError(f"no token named {name}")
    return token


# --- events, written with the change they tell of ---------------------------------

Serializer = Callable[[CallAction], Mapping[str, Any]]
Enqueue = Callable[[int], None]


def note_action(session: Session, action_id: int) -> None:
    """The action's status may have changed by an UPDATE the ORM does not see."""
    session.info.setdefault(_TOUCHED, set()).add(action_id)


def watch(sessions: sessionmaker[Session], serialize: Serializer, enqueue: Enqueue) -> None:
    """Write an event with every commit of these sessions that changes an action
    a token with a webhook placed; `enqueue` each event's id once committed."""

    def after_flush(session: Session, _flush: UOWTransaction) -> None:
        for row in chain(session.new, session.dirty):
            if isinstance(row, CallAction) and _announced_field_changed(session, row):
                note_action(session, row.id)

    def before_commit(session: Session) -> None:
        session.flush()  # the last changes, which after_flush notes
        touched = session.info.pop(_TOUCHED, None)
        if not touched:
            return
        written = [e for a in sorted(touched) for e in _write_events(session, a, serialize)]
        if written:
            session.flush()
            session.info.setdefault(_WRITTEN, []).extend(e.id for e in written)

    def after_commit(session: Session) -> None:
        for event_id in session.info.pop(_WRITTEN, ()):
            enqueue(event_id)

    def after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # committed (and queued), or rolled back: forgotten
            session.info.pop(_TOUCHED, None)
            session.info.pop(_WRITTEN, None)

    event.listen(sessions, "after_flush", after_flush)
    event.listen(sessions, "before_commit", before_commit)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_transaction_end", after_transaction_end)


def _announced_field_changed(session: Session, action: CallAction) -> bool:
    if action in session.new:
        return True
    attrs = inspect(action).attrs
    return any(attrs[name].history.has_changes() for name in ("status", "verification"))


def event_types(action: CallAction) -> list[str]:
    """What the action's state announces: its status, and its verification's result."""
    types = [f"call.{action.status}"]
    if action.verification:
        types.append(f"verification.{action.verification}")
    return types


def _write_events(session: Session, action_id: int, serialize: Serializer) -> list[WebhookEvent]:
    action = session.get(CallAction, action_id)
    if action is None or action.api_token_id is None:
        return []
    token = session.get(ApiToken, action.api_token_id)
    if token is None or not token.webhook_url:
        return []
    session.refresh(action)  # an UPDATE may have changed it behind the ORM's back
    for call in action.calls:
        session.expire(call, ["events"])
    announced = list(
        session.scalars(
            select(WebhookEvent.type)
            .where(WebhookEvent.action_id == action_id)
            .order_by(WebhookEvent.id.desc())
        )
    )
    written = []
    for kind in event_types(action):
        family = kind.split(".", 1)[0] + "."
        last = next((t for t in announced if t.startswith(family)), None)
        if kind != last:
            written.append(_event(token, action, kind, serialize))
    session.add_all(written)
    return written


def _event(token: ApiToken, action: CallAction, kind: str, serialize: Serializer) -> WebhookEvent:
    event_id = "evt_" + secrets.token_urlsafe(18)
    payload = {"id": event_id, "type": kind, "created": int(time.time()), "data": serialize(action)}
    return WebhookEvent(
        event_id=event_id,
        api_token_id=token.id,
        action_id=action.id,
        type=kind,
        url=token.webhook_url,
        body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        state="pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )


# --- delivery ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What came of one POST: the receiver's status and answer, or an error."""

    status_code: int | None
    excerpt: str | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver(
    session: Session,
    hasher: PinHasher,
    event_row_id: int,
    settings: WebhookSettings,
    *,
    replay: bool = False,
) -> float | None:
    """One attempt to deliver an event, recorded; seconds until the next one, or
    None. A replay (the admin pages) is one more attempt of an event in any
    state: it never schedules others, and only a success changes the state.
    Any other delivery first claims the event, so of two jobs queued for it (a
    late queue, and the sweep's) only one posts."""
    session.rollback()
    if not replay and not _claim(session, event_row_id, settings):
        return None
    found = session.get(WebhookEvent, event_row_id, populate_existing=True)
    if found is None or (not replay and found.state != "pending"):
        session.rollback()
        return None
    # Where the token's events go now: a URL fixed or removed since the event
    # was written takes its retries and replays too.
    url, body, event_id = found.token.webhook_url, found.body, found.event_id
    secrets_now = signing_secrets(hasher, found.token)
    session.rollback()  # no transaction is held while the receiver answers
    if url is None:
        answer = Answer(None, None, NO_WEBHOOK, 0)
        return _record(session, event_row_id, "", answer, settings, replay, final=True)
    try:
        check_url(url, settings.allow_http)
    except WebhookUrlError as exc:
        answer = Answer(None, None, f"not sent: {exc}"[:200], 0)
    else:
        answer = post(url, body, secrets_now, event_id, settings.timeout)
    return _record(session, event_row_id, url, answer, settings, replay)


def _claim(session: Session, event_row_id: int, settings: WebhookSettings) -> bool:
    """Take a pending event that is due (written, or its retry's time has come)
    by moving its next attempt past this one's end; False if another job holds
    it, or it is not due or not pending."""
    begin_write(session)
    now = utcnow()
    claimed = session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == event_row_id,
            WebhookEvent.state == "pending",
            or_(WebhookEvent.next_attempt_at.is_(None), WebhookEvent.next_attempt_at <= now),
        )
        .values(next_attempt_at=now + timedelta(seconds=settings.timeout) + LEASE_MARGIN)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def post(url: str, body: str, secrets_now: list[str], event_id: str, timeout: float) -> Answer:
    """POST the signed body; never follows a redirect (the URL is the one set)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Glue-Webhooks/1",
        EVENT_ID_HEADER: event_id,
        SIGNATURE_HEADER: signature(secrets_now, int(time.time()), body),
    }
    started = time.monotonic()
    # requests' timeout bounds each wait for a byte, not the attempt: a receiver
    # sending a byte at a time would hold the worker. The deadline does.
    deadline = started + timeout
    late = Answer(None, None, f"no answer within {timeout:g} s", 0)
    try:
        with requests.post(
            url,
            data=body.encode(),
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,  # only the excerpt of the answer is read
        ) as response:
            if time.monotonic() > deadline:  # its status line and headers came too slowly
                return replace(late, duration_ms=_ms(started))
            excerpt = _excerpt(response, deadline)
            return Answer(response.status_code, excerpt, None, _ms(started))
    except requests.Timeout:
        return replace(late, duration_ms=_ms(started))
    except (requests.RequestException, OSError) as exc:
        return Answer(None, None, f"not delivered: {type(exc).__name__}", _ms(started))


def _excerpt(response: requests.Response, deadline: float) -> str | None:
    """The start of the answer's body, as much as came by the deadline; None if
    none could be read (the status stands)."""
    raw = b""
    try:
        while len(raw) < EXCERPT * 4 and (left := deadline - time.monotonic()) > 0:
            _wait_at_most(response, left)
            piece = response.raw.read1(EXCERPT * 4 - len(raw), decode_content=True)
            if not piece:
                break
            raw += piece
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # a timeout at the deadline, or a broken answer: keep what came
    return raw.decode(_codec(response.encoding), "replace")[:EXCERPT] or None


def _wait_at_most(response: requests.Response, seconds: float) -> None:
    """Let the next read of the answer wait `seconds` at most, not a whole timeout."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _codec(charset: str | None) -> str:
    """The codec the receiver named, or utf-8 when it named none Python knows."""
    try:
        return codecs.lookup(charset or "utf-8").name
    except LookupError:
        return "utf-8"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record(
    session: Session,
    event_row_id: int,
    url: str,
    answer: Answer,
    settings: WebhookSettings,
    replay: bool,
    final: bool = False,
) -> float | None:
    """Record one attempt (to `url`, "" if none was addressed) and what follows:
    delivered, a retry, or failed (after the last attempt, or at once if `final`)."""
    begin_write(session)
    found = session.get(WebhookEvent, event_row_id, with_for_update=True, populate_existing=True)
    if found is None:  # deleted meanwhile (its token was)
        session.rollback()
        return None
    done = session.scalar(
        select(func.count()).where(WebhookDelivery.webhook_event_id == event_row_id)
    )
    session.add(
        WebhookDelivery(
            webhook_event_id=event_row_id,
            url=url,
            attempt=(done or 0) + 1,
            replay=replay,
            status_code=answer.status_code,
            response_excerpt=answer.excerpt,
            error=answer.error,
            duration_ms=answer.duration_ms,
        )
    )
    found.attempts += 1
    delay = None
    if answer.delivered:
        found.state, found.delivered_at, found.next_attempt_at = "delivered", utcnow(), None
    elif not replay and found.state == "pending":
        if found.attempts < settings.max_attempts and not final:
            delay = settings.delay_after(found.attempts)
            found.next_attempt_at = utcnow() + timedelta(seconds=delay)
        else:
            found.state, found.next_attempt_at = "failed", None
    outcome = answer.status_code if answer.status_code is not None else answer.error
    log.info(
        "webhook event %s (%s) attempt %d to token %s: %s",
        found.event_id,
        found.type,
        found.attempts,
        found.api_token_id,
        outcome,
    )
    session.commit()
    return delay


def take_stranded(session: Session) -> list[int]:
    """Pending events whose next attempt is long past due (their job was lost),
    marked due now so the next sweep leaves them to the job queued for them."""
    begin_write(session)
    cutoff = utcnow() - STRANDED_AFTER
    found = list(
        session.scalars(
            select(WebhookEvent.id)
            .where(WebhookEvent.state == "pending", WebhookEvent.next_attempt_at < cutoff)
            .order_by(WebhookEvent.id)
            .limit(500)
        )
    )
    if found:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(found))
            .values(next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return found
