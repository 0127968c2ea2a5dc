"""Admin pages: flow files and their checks, calls, verification attempts, locks, webhooks."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pages (they use the sign-in of app.auth)."""
    from app.admin import views, webhook_views  # noqa: F401 (its pages are on views.bp)
    from app.web import http_errors

    app.register_blueprint(views.bp)
    http_errors.register(app, "/admin/", views.http_error)
