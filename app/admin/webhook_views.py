"""The admin webhook pages: events sent to host applications, each one's
attempts, and a Replay button. On the admin blueprint (its sign-in, admin
check, CSRF and headers), in a module of their own."""

from __future__ import annotations

import logging
from typing import cast

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm

from app.admin import webhook_service
from app.admin.views import bp
from app.auth.sign_in import WebUser
from app.db import get_session
from app.outbound import jobs

log = logging.getLogger(__name__)


class ReplayForm(FlaskForm):
    """One Replay button: its CSRF token is all it sends (the event is in the URL)."""


@bp.get("/webhooks")
def webhooks() -> ResponseReturnValue:
    """Webhook events, newest first, filtered by token and state."""
    session = get_session()
    token = request.args.get("token", "")[:64]
    state = request.args.get("state", "")
    if state not in webhook_service.STATES:
        state = ""
    number = max(1, request.args.get("page", 1, type=int) or 1)
    return render_template(
        "admin/webhooks.html",
        page=webhook_service.recent_events(session, number, token, state),
        tokens=webhook_service.token_names(session),
        states=webhook_service.STATES,
        token=token,
        state=state,
    )


@bp.get("/webhooks/<int:event_row_id>")
def webhook_event(event_row_id: int) -> ResponseReturnValue:
    """One event: its body as sent and every attempt to deliver it."""
    found = webhook_service.event(get_session(), event_row_id)
    if found is None:
        abort(404)
    return render_template("admin/webhook_event.html", event=found, form=ReplayForm())


@bp.post("/webhooks/<int:event_row_id>/replay")
def replay_webhook(event_row_id: int) -> ResponseReturnValue:
    """Send the event once more (same id and body, signed anew), and record who asked
    once it is queued."""
    if not ReplayForm().validate_on_submit():
        abort(400)
    session = get_session()
    found = webhook_service.event(session, event_row_id)
    if found is None:
        abort(404)
    admin = cast(WebUser, current_user).user
    event_id = found.event_id
    here = redirect(url_for(".webhook_event", event_row_id=event_row_id))
    session.rollback()  # no transaction held while queueing (or delivering, in tests)
    try:
        jobs.deliver_webhook(event_row_id, replay=True)
    except Exception:
        # Nothing retries a replay, so none is recorded: the admin asks again.
        log.exception("could not queue a replay of webhook event %s", event_id)
        flash(f"Replay of {event_id} not queued: the job queue is unreachable. Try again.", "error")
        return here
    webhook_service.record_replay(session, admin, found)
    session.commit()
    log.info("admin %s replayed webhook event %s", admin.account_number, event_id)
    flash(f"Replay of {event_id} queued.")
    return here
