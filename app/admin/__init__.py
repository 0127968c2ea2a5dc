"""Admin pages: the overview, flow files and their checks, calls, verification attempts, locks."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pages (they use the sign-in of app.auth)."""
    from app.admin import insight, views  # noqa: F401 (insight adds its pages to views.bp)
    from app.web import http_errors

    app.register_blueprint(views.bp)
    http_errors.register(app, "/admin/", views.http_error)
