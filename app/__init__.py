"""Glue: an IVR callback server. `create_app` is the table of contents."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(
    test_config: dict[str, Any] | None = None,
    *,
    instance_path: str | None = None,
    strict_flows: bool = True,
) -> Flask:
    """Build the app. With strict_flows, a broken flow file stops start-up."""
    from app.web.flask_app import Glue

    app = Glue(__name__, instance_path=instance_path)

    from app import config

    config.load(app, test_config)

    from app import commands, db, logs, metrics
    from app.dialects.registry import DIALECTS
    from app.directory import pins
    from app.flows import registry

    metrics.init_app(app, platforms=[dialect.NAME for dialect in DIALECTS])  # first: it times
    logs.init_app(app)
    db.init_app(app)
    registry.init_app(app, strict=strict_flows)
    pins.init_app(app)
    commands.init_app(app)

    from app import admin, auth, hooks, outbound, rate_limits
    from app.web import http_errors, request_limits

    http_errors.init_app(app)
    request_limits.init_app(app)  # before any blueprint: its rules take the id converter
    rate_limits.init_app(app)
    hooks.init_app(app)
    auth.init_app(app)  # the sign-in the web page and the admin pages share
    outbound.init_app(app)
    admin.init_app(app)

    from app import retention
    from app.web import health, security_headers

    security_headers.init_app(app)
    health.init_app(app)
    retention.init_app(app)
    return app
