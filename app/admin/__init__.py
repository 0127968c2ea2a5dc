"""Admin pages: the overview, flow files and their checks, calls, verification attempts,
locks, webhooks, the flow editor (studio.py) and the test phone (test_phone.py)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pages (they use the sign-in of app.auth)."""
    # their views join views.bp
    from app.admin import insight, lists, studio, test_phone, views, webhook_views  # noqa: F401
    from app.web import http_errors

    app.register_blueprint(views.bp)
    http_errors.register(app, "/admin/", views.http_error)
