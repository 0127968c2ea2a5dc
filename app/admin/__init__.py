"""Admin pages: flow files and their checks, calls, verification attempts, locks,
and the flow editor (studio.py)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pages (they use the sign-in of app.auth)."""
    from app.admin import studio, views
    from app.web import http_errors

    assert studio.bp is views.bp  # the editor's views are on the admin blueprint
    app.register_blueprint(views.bp)
    http_errors.register(app, "/admin/", views.http_error)
