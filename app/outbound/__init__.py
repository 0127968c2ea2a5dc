"""Click-to-call: placing calls through providers, off the web request."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.outbound import api, cli, voice, web
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
    web.init_app(app)
