"""SQLAlchemy 2.0 typed models: the directory, calls, events and verification attempts.

Times are naive UTC everywhere (see `utcnow`), so SQLite and PostgreSQL compare
them the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so Alembic migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LockoutMixin:
    """Failure counting shared by users and groups (both are claimed by callers)."""

    failed_attempts: Mapped[int] = mapped_column(default=0)
    lockouts: Mapped[int] = mapped_column(default=0)  # how often it has locked
    locked_until: Mapped[datetime | None]


class OwnerLockoutMixin(LockoutMixin):
    """The same counters for attempts made from the record's own phones (a
    group's: its own and its members'). Failures from elsewhere never lock the
    owner out, so a stranger cannot shut a whole directory out of its accounts."""

    owner_failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    owner_lockouts: Mapped[int] = mapped_column(default=0, server_default="0")
    owner_locked_until: Mapped[datetime | None]

    def locked_until_latest(self) -> datetime | None:
        """The later of the two lockouts' ends, for listings."""
        ends = [t for t in (self.locked_until, self.owner_locked_until) if t is not None]
        return max(ends, default=None)


class User(OwnerLockoutMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    pin_hash: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Web sign-in (argon2 hash); None: this user cannot sign in to the web page.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # May use the admin pages (/admin/): `flask users make-admin ACCOUNT`.
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The IANA zone the admin pages show times in; None: GLUE_TIME_ZONE.
    time_zone: Mapped[str | None] = mapped_column(String(64))

    phones: Mapped[list[PhoneNumber]] = relationship(
        back_populates="user", order_by="PhoneNumber.id", cascade="all, delete-orphan"
    )
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class Group(OwnerLockoutMixin, Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    pin_hash: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    phones: Mapped[list[PhoneNumber]] = relationship(
        back_populates="group", order_by="PhoneNumber.id", cascade="all, delete-orphan"
    )
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="group", cascade="all, delete-orphan"
    )


class UnknownClaim(LockoutMixin, Base):
    """Failures counted against a claim that matches no record.

    Unknown accounts lock exactly like real ones, so lockout cannot be used to
    tell which account numbers exist.
    """

    __tablename__ = "unknown_claims"
    __table_args__ = (UniqueConstraint("claim_type", "claimed"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_type: Mapped[str] = mapped_column(String(16))
    claimed: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)

    group: Mapped[Group] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"
    __table_args__ = (CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="one_owner"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    # When its owner proved to hold it (a code read out on a call to it).
    confirmed_at: Mapped[datetime | None]
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), index=True
    )

    user: Mapped[User | None] = relationship(back_populates="phones")
    group: Mapped[Group | None] = relationship(back_populates="phones")


class Call(Base):
    """One phone call as a platform reported it; `state` is where its flow stands."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("platform", "platform_call_id"),
        Index("ix_calls_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    platform_call_id: Mapped[str] = mapped_column(String(128))
    caller_number: Mapped[str | None] = mapped_column(String(32))
    flow: Mapped[str] = mapped_column(String(64))
    # active until a final step (transfer, voicemail, hangup, ...) is sent
    status: Mapped[str] = mapped_column(String(20), default="active")
    outcome: Mapped[str | None] = mapped_column(String(20))
    # How far the caller got in the flow's verification: claim (entered, or the
    # caller id a caller_id flow claims), pin (claim and PIN in: checked).
    # None: neither yet. The overview's funnel counts it (app/flows/progress.py).
    reached: Mapped[str | None] = mapped_column(String(8))
    # The platform's own view, from status callbacks and hang-up events; it only
    # moves forward (see app/flows/statuses.py), whatever order they arrive in.
    platform_status: Mapped[str | None] = mapped_column(String(20))
    duration_seconds: Mapped[int | None]
    recording_url: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    ended_at: Mapped[datetime | None]
    # The number of the flow's version the call started on: its later turns run
    # that version, whatever is published meanwhile (None: before versions).
    flow_version: Mapped[int | None]
    # The click-to-call action that placed this call, when Glue placed it.
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_actions.id", ondelete="SET NULL"), index=True
    )

    events: Mapped[list[CallEvent]] = relationship(back_populates="call", order_by="CallEvent.id")


class CallEvent(Base):
    """Every platform request received, normalised, secrets masked.

    `dedupe_key` is a keyed hash of the delivery: a retried identical delivery
    hits the unique constraint and is answered with the stored `reply`.
    `payload` holds the fields sent, and only those; `notes` what Glue says of
    them (`dropped`: how many unread fields were not stored; `error`: why the
    request is no turn of a call), kept apart so no field sent can pass for one.
    """

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str | None] = mapped_column(String(32))
    reply: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Milliseconds from the request reaching its route to its event being
    # stored (the commit after is not counted); None where not measured.
    duration_ms: Mapped[int | None]

    call: Mapped[Call | None] = relationship(back_populates="events")


class VerificationAttempt(Base):
    """One identity check: what was claimed and how it ended. Never the PIN."""

    __tablename__ = "verification_attempts"
    __table_args__ = (Index("ix_verification_attempts_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    claim_type: Mapped[str] = mapped_column(String(16))  # account, group, caller_id
    claimed: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"), index=True
    )
    # For a group verified by a member's PIN: which member.
    member_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(16))  # verified, rejected, locked
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallAction(Base):
    """A call Glue was asked to place: recorded before it is attempted, then
    updated with the provider's answer and the status callbacks that follow."""

    __tablename__ = "call_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    via: Mapped[str] = mapped_column(String(16))  # web, api
    purpose: Mapped[str] = mapped_column(String(16))  # connect, verify_phone, verify_survo
    target_kind: Mapped[str] = mapped_column(String(16))  # originator, user, group, number
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    target_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL")
    )
    from_number: Mapped[str] = mapped_column(String(20))  # rung first: the user's phone
    to_number: Mapped[str | None] = mapped_column(String(20))  # then connected to this
    provider: Mapped[str] = mapped_column(String(20))
    # queued, scheduled, calling, ringing, connected, no_answer, busy, failed,
    # completed, cancelled (see app/outbound/service.py)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    detail: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=0)
    params_sent: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # secrets masked
    provider_answer: Mapped[str | None] = mapped_column(Text)
    provider_call_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The API token that asked for the call (None: the web page): only it may read it.
    api_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL"), index=True
    )
    # For a click-to-SurVo verification call: how the flow's check ended.
    verification: Mapped[str | None] = mapped_column(String(16))
    # A scheduled call: when it is placed (UTC); None: at once.
    scheduled_for: Mapped[datetime | None]
    # Who asked to cancel the call, when, and what came of it (None: nobody asked).
    cancel_requested_at: Mapped[datetime | None]
    cancel_requested_by: Mapped[str | None] = mapped_column(String(100))
    cancel_result: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    target_user: Mapped[User | None] = relationship(foreign_keys=[target_user_id])
    target_group: Mapped[Group | None] = relationship()
    calls: Mapped[list[Call]] = relationship(order_by="Call.id")


class OneTimeCode(Base):
    """A code Glue reads to a user over the phone to prove they hold that phone.

    Neither the code nor the token of its voice document is stored: both are
    derived from a random `seed` with the server's PIN key (see
    app/outbound/codes.py), so the database alone reveals neither. Single use,
    short-lived, few tries; the voice document is served at its token, once.
    """

    __tablename__ = "one_time_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(20))
    seed: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    tries_left: Mapped[int] = mapped_column(default=5)
    used_at: Mapped[datetime | None]
    # The code is read out once: after that, its voice document says nothing.
    read_at: Mapped[datetime | None]
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_actions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A host application's key to the JSON API (only its SHA-256 is kept)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    # Where Glue posts the events of the calls this token places (None: nowhere),
    # and the generation of the secret that signs them: the secret is derived,
    # never stored (see app/outbound/webhooks.py); rotating it counts one up.
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret_generation: Mapped[int] = mapped_column(default=1, server_default="1")
    # When it was last rotated: the secret before signs too for a while after.
    webhook_secret_rotated_at: Mapped[datetime | None]


class WebhookEvent(Base):
    """An event for a host application's webhook (a call's status changed, a
    verification ended), written in the transaction of the change it tells of
    and delivered by the job queue until the receiver answers 2xx."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)  # evt_...: receivers dedupe
    api_token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_actions.id", ondelete="SET NULL"), index=True
    )
    type: Mapped[str] = mapped_column(String(40))  # call.<status>, verification.<result>
    # The token's webhook URL when the event was written; each attempt goes to
    # the token's URL of its time, recorded on its WebhookDelivery.
    url: Mapped[str] = mapped_column(String(2000))
    # The JSON sent, as signed: every delivery, a replay too, sends these bytes.
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # delivered, failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    token: Mapped[ApiToken] = relationship()
    deliveries: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="event", order_by="WebhookDelivery.id", cascade="all, delete-orphan"
    )


class WebhookDelivery(Base):
    """One attempt to deliver a webhook event, and what the receiver answered."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_event_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    attempt: Mapped[int]  # 1, 2, ... per event, replays included
    replay: Mapped[bool] = mapped_column(default=False)  # asked for on the admin pages
    status_code: Mapped[int | None]  # None: no HTTP answer (see error)
    response_excerpt: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    event: Mapped[WebhookEvent] = relationship(back_populates="deliveries")


class IdempotencyKey(Base):
    """An `Idempotency-Key` an API token sent with a request that places a call,
    and the first answer to it, replayed to a retry for 24 hours (see
    app/outbound/idempotency.py). The unique (token, key) pair is the claim: of
    two concurrent retries, one inserts the row and goes on, the other cannot."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("api_token_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    # None while the first request is still being answered.
    response_status: Mapped[int | None]
    response_body: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class FormNonce(Base):
    """A web form that places a call, once submitted: its one-time nonce (each
    rendered form has its own), and the call it placed. A resubmitted form finds
    its row and shows that call instead of placing another."""

    __tablename__ = "form_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_actions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AdminAction(Base):
    """Something an admin did on the admin pages (e.g. unlocked an account), kept
    for the record; `detail` says what it changed."""

    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Who: kept (as None) if that user is ever deleted, so the record stays.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))  # unlock
    # user, group, or unknown_<claim type> (a claim that matches no record)
    target_kind: Mapped[str] = mapped_column(String(32))
    target_number: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    user: Mapped[User | None] = relationship()


class FlowVersion(Base):
    """One published version of a flow: its YAML source as written, checked
    before it was stored. The highest number is the one new calls start on;
    rows are never changed (a rollback publishes an old source again)."""

    __tablename__ = "flow_versions"
    # The constraint's index serves every lookup: by flow, newest number first.
    __table_args__ = (UniqueConstraint("flow", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flow: Mapped[str] = mapped_column(String(64))
    number: Mapped[int]  # 1, 2, ... per flow
    source: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 hex of the source's UTF-8
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # cli, file, admin:<account>, migration
    created_by: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(String(500), default="", server_default="")
    origin: Mapped[str] = mapped_column(String(20))  # file, rollback, editor, migration


class FlowDraft(Base):
    """An admin's unpublished edit of a flow, kept until it is published: one per
    flow and admin, so a reload (or another browser) finds it again."""

    __tablename__ = "flow_drafts"
    __table_args__ = (UniqueConstraint("flow", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flow: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(Text)
    # The published version the edit started from; None: the flow had none (a new flow).
    base_version: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
