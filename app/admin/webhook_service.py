"""What the admin webhook pages show: events, filtered, with their attempts (no Flask)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.admin.listings import page_of
from app.admin.service import Page, record_action
from app.models import ApiToken, User, WebhookEvent

STATES = ("pending", "delivered", "failed")


def recent_events(
    session: Session, number: int = 1, token: str = "", state: str = ""
) -> Page[WebhookEvent]:
    """Webhook events, newest first, PER_PAGE to a page; of one token's and in
    one state when they are given."""
    conditions = []
    if token:
        conditions.append(ApiToken.name == token)
    if state:
        conditions.append(WebhookEvent.state == state)
    stmt = (
        select(WebhookEvent)
        .join(WebhookEvent.token)
        .where(*conditions)
        .options(selectinload(WebhookEvent.token), selectinload(WebhookEvent.deliveries))
        .order_by(WebhookEvent.created_at.desc(), WebhookEvent.id.desc())
    )
    return page_of(session, stmt, number)


def token_names(session: Session) -> list[str]:
    """The tokens whose events may be listed: every token, by name."""
    return list(session.scalars(select(ApiToken.name).order_by(ApiToken.name)))


def event(session: Session, event_row_id: int) -> WebhookEvent | None:
    return session.get(WebhookEvent, event_row_id)


def record_replay(session: Session, admin: User, found: WebhookEvent) -> None:
    """Keep who asked for a replay of which event (the caller commits)."""
    detail = f"{found.type} to token {found.token.name}"
    record_action(session, admin, "replay_webhook", "webhook_event", found.event_id, detail)
