"""Blueprints that receive platform requests: one module per platform."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.hooks import didml, ifbyphone, platform, status_callbacks, twiml, voipnow
    from app.web import queue_wait

    app.extensions[queue_wait.EXTENSION] = queue_wait.StandingQueue()
    for hook in (ifbyphone, voipnow, didml, twiml):
        platform.register(app, hook.bp, hook.DIALECT, hook.AUTHENTICATE)
    status_callbacks.init_app(app)
