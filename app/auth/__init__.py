"""Who may use the web pages and the API: passwords, web sign-in, API tokens."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.auth import sign_in

    sign_in.init_app(app)
