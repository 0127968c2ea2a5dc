"""Admin pages: flow files and their checks, calls, verification attempts, locks."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pages (they use the sign-in of app.auth)."""
    from app.admin import test_phone, views  # noqa: F401 (test_phone adds its routes to bp)
    from app.web import http_errors

    app.register_blueprint(views.bp)
    http_errors.register(app, "/admin/", views.http_error)
