"""Blueprints that receive platform requests: one module per platform."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.hooks import ifbyphone, platform

    platform.register(app, ifbyphone.bp, ifbyphone.DIALECT, ifbyphone.AUTHENTICATE)
