"""The job queue that places calls, off the web request (huey).

A provider may hold its HTTP answer until the first leg answers, tens of
seconds, so no web worker waits for it. The queue is a SQLite file by default
(no server to run) and Redis when GLUE_REDIS_URL is set. Run the worker with
`huey_consumer app.outbound.jobs.huey` (`make run` starts it beside gunicorn).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from huey import Huey, RedisHuey, SqliteHuey, crontab
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import queue_settings
from app.db import get_session
from app.directory.pins import get_hasher
from app.flows.registry import get_flow
from app.logs import bind_action
from app.metrics import instruments as metrics
from app.models import CallAction, utcnow
from app.outbound import codes, service, voice, webhooks
from app.outbound.destinations import DestinationPolicy, PolicySettingError
from app.outbound.providers import make_provider
from app.outbound.providers.base import CallRequest, InvalidCallRequest
from app.verification import call_link


def _make_huey() -> Huey:
    settings = queue_settings()
    if settings.redis_url:
        return RedisHuey("glue", url=settings.redis_url)
    Path(settings.path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("glue", filename=settings.path)


log = logging.getLogger(__name__)
huey = _make_huey()
_worker_app: Flask | None = None


@huey.task()
def place_call(action_id: int) -> None:
    """Place one recorded call; a clear refusal is tried again later, with backoff."""
    bind_action(action_id)
    with _app().app_context():
        config = current_app.config
        session = get_session()
        row = session.execute(
            select(CallAction.provider, CallAction.status, CallAction.scheduled_for).where(
                CallAction.id == action_id
            )
        ).first()
        session.rollback()  # placing begins its own (writing) transaction
        if row is None:
            return
        name, status, due = row
        if status == "scheduled" and due is not None and due > utcnow():
            # Delivered before its time (the queue was changed, or a clock
            # differs): back on the schedule, for its time.
            place_call.schedule((action_id,), eta=due.replace(tzinfo=UTC))
            return
        try:
            policy = DestinationPolicy.from_config(config)
        except PolicySettingError as exc:  # refuse every call rather than call any number
            log.error("call action %s: %s", action_id, exc)
            service.fail_unplaced(session, action_id, f"not sent: {exc}")
            metrics.call_placed(name, "not_sent")
            return
        try:
            provider = make_provider(name, config)
        except ValueError as exc:  # a provider setting that cannot work
            log.error("call action %s: provider %s is not usable: %s", action_id, name, exc)
            service.fail_unplaced(session, action_id, f"the {name} provider is not usable: {exc}")
            metrics.call_placed(name, "not_sent")
            return
        try:
            retry = service.place(
                session,
                action_id,
                provider,
                lambda action: call_request(session, action, config),
                config["CALL_MAX_ATTEMPTS"],
                policy=policy,
            )
        finally:
            provider.close()
        if retry:
            attempts = session.get(CallAction, action_id).attempts  # type: ignore[union-attr]
            delay = config["CALL_RETRY_SECONDS"] * 2 ** (attempts - 1)
            place_call.schedule((action_id,), delay=delay)


def enqueue(session: Session, action: CallAction) -> bool:
    """Queue the placing of a recorded action, at once or at its scheduled time;
    False (and the action failed) if the queue is unreachable."""
    try:
        if action.scheduled_for is None:
            place_call(action.id)
        else:
            place_call.schedule((action.id,), eta=action.scheduled_for.replace(tzinfo=UTC))
    except Exception as exc:
        log.exception("could not queue call action %s", action.id)
        detail = f"the call could not be queued ({type(exc).__name__})"
        service.fail_unplaced(session, action.id, detail)
        return False
    return True


@huey.task()
def deliver_webhook(event_row_id: int, replay: bool = False) -> None:
    """One attempt to deliver a webhook event; the next is scheduled with backoff."""
    with _app().app_context():
        settings = webhooks.WebhookSettings.from_config(current_app.config)
        session = get_session()  # this context's own, even when run inside a commit
        delay = webhooks.deliver(session, get_hasher(), event_row_id, settings, replay=replay)
    if delay is not None:
        deliver_webhook.schedule((event_row_id,), delay=delay)


def enqueue_webhook(event_row_id: int) -> None:
    """Queue the delivery of a committed event. If the queue is unreachable the
    event stays pending, and `resend_stranded` queues it later."""
    try:
        deliver_webhook(event_row_id)
    except Exception:
        log.exception("could not queue webhook event %s", event_row_id)


@huey.periodic_task(crontab(minute="*/5"))
def resend_stranded() -> None:
    """Queue again the webhook events whose job was lost (a worker died)."""
    with _app().app_context():
        for event_row_id in webhooks.take_stranded(get_session()):
            enqueue_webhook(event_row_id)


def call_request(session: Session, action: CallAction, config: Mapping[str, Any]) -> CallRequest:
    """What to ask the provider for, by the action's purpose."""
    base = config["PUBLIC_URL"].rstrip("/") or "http://127.0.0.1:5000"
    # Twilio signs its callbacks for Glue's TwiML status hook; the others report
    # as DIDforSale does.
    hook = "twiml" if action.provider == "twilio" else "didml"
    request = CallRequest(
        to_number=action.from_number,  # the user's phone rings first
        caller_id=config["ORIGINATOR_NUMBER"] or None,
        reference=str(action.id),
        status_callback=f"{base}/{hook}/status?action={action.id}",
    )
    if action.purpose == "verify_phone":
        code = codes.for_action(session, action.id)
        if code is None:
            raise InvalidCallRequest("no one-time code for this call")
        token = codes.token_of(get_hasher(), code)
        return replace(request, voice_url=f"{base}/calls/voice/{code.id}/{token}")
    if action.purpose == "verify_survo":
        flow = get_flow(config["VERIFY_FLOW"])
        survo = flow.platform("ifbyphone").get("survo") if flow else None
        if not survo:
            raise InvalidCallRequest(f"flow {config['VERIFY_FLOW']} has no ifbyphone survo")
        return replace(
            request,
            survo_id=str(survo),
            user_parameters={"name": action.user.name},
            # Signed: it is what ties the SurVo's answers to this request.
            pass_through=call_link.pass_through(get_hasher(), action),
            secret_pass_through=call_link.SECRET_KEYS,
        )
    dial = voice.dial_token(get_hasher(), action.id)
    return replace(
        request,
        connect_to=action.to_number or "",
        page="glue",
        dial_url=f"{base}/calls/voice/dial/{action.id}/{dial}",
    )


def _app() -> Flask:
    """The app whose config and database a job uses: the current one (a web
    request with an immediate queue, a test), else one made for this worker."""
    global _worker_app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    if _worker_app is None:
        from app import create_app

        _worker_app = create_app(strict_flows=False)
    return _worker_app
