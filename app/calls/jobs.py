"""The job queue that places calls, off the web request (huey).

A provider may hold its HTTP answer until the first leg answers, tens of
seconds, so no web worker waits for it. The queue is a SQLite file by default
(no server to run) and Redis when GLUE_REDIS_URL is set. Run the worker with
`huey_consumer app.calls.jobs.huey` (`make run` starts it beside gunicorn).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from huey import Huey, RedisHuey, SqliteHuey
from sqlalchemy.orm import Session

from app.calls import service
from app.calls.providers import make_provider
from app.calls.providers.base import CallRequest
from app.config import queue_settings
from app.db import get_session
from app.models import CallAction


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
    with _app().app_context():
        config = current_app.config
        provider = make_provider(config["CALL_PROVIDER"], config)
        session = get_session()
        try:
            retry = service.place(
                session,
                action_id,
                provider,
                lambda action: call_request(action, config),
                config["CALL_MAX_ATTEMPTS"],
            )
        finally:
            provider.close()
        if retry:
            attempts = session.get(CallAction, action_id).attempts  # type: ignore[union-attr]
            delay = config["CALL_RETRY_SECONDS"] * 2 ** (attempts - 1)
            place_call.schedule((action_id,), delay=delay)


def enqueue(session: Session, action: CallAction) -> None:
    """Queue the placing of a recorded action; if the queue is unreachable the
    action says so, rather than waiting forever as `queued`."""
    try:
        place_call(action.id)
    except Exception:
        log.exception("could not queue call action %s", action.id)
        session.rollback()
        action.status = "failed"
        action.detail = "the call could not be queued; please try again"
        session.commit()


def call_request(action: CallAction, config: Mapping[str, Any]) -> CallRequest:
    """What to ask the provider for: ring the user, then connect the target."""
    base = config["PUBLIC_URL"].rstrip("/") or "http://127.0.0.1:5000"
    return CallRequest(
        to_number=action.from_number,
        connect_to=action.to_number or "",
        caller_id=config["ORIGINATOR_NUMBER"] or None,
        reference=str(action.id),
        page="glue",
        voice_url=None,
        status_callback=f"{base}/didml/status?action={action.id}",
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
