"""Click-to-call: placing calls through providers, off the web request."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)


def uses_sandbox(config: Mapping[str, Any]) -> bool:
    """Whether calls go to the sandbox provider, which rings nobody."""
    chosen = (config.get("CALL_PROVIDER"), config.get("VERIFY_PROVIDER"))
    return any(str(name or "").strip().lower() == "sandbox" for name in chosen)


def init_app(app: Flask) -> None:
    from app import metrics
    from app.outbound import api, cli, jobs, service, voice, web, webhook_cli, webhooks
    from app.outbound.destinations import DestinationPolicy
    from app.web import http_errors

    # A destination policy setting that cannot be read stops the start, rather
    # than let Glue call numbers it was meant to refuse.
    DestinationPolicy.from_config(app.config)

    app.register_blueprint(api.bp)
    http_errors.register(app, "/api/", api.http_error)
    app.register_blueprint(voice.bp)
    http_errors.register(app, "/calls/voice/", voice.http_error)
    app.cli.add_command(cli.api_tokens_cli)
    for command in webhook_cli.COMMANDS:
        cli.api_tokens_cli.add_command(command)
    # Every commit that changes a call a token with a webhook placed writes its event.
    webhooks.watch(app.extensions["glue.sessionmaker"], service.action_view, jobs.enqueue_webhook)
    web.init_app(app)
    # Read from the queue at each scrape: counting in and out in every process
    # would drift whenever one died between the two.
    metrics.read_at_scrape(
        app, "glue_jobs_pending", "Jobs queued, not yet taken by a worker", jobs.huey.pending_count
    )
    metrics.read_at_scrape(
        app,
        "glue_jobs_scheduled",
        "Jobs waiting for their time (scheduled calls, retries)",
        jobs.huey.scheduled_count,
    )
    if uses_sandbox(app.config) and not app.testing:
        log.warning(
            "calls go to the sandbox (GLUE_CALL_PROVIDER / GLUE_VERIFY_PROVIDER=sandbox): "
            "nobody is rung; set a real provider for a deployment"
        )
