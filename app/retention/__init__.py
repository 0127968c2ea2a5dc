"""Retention: `flask retention purge` deletes call records past their time."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.retention.cli import retention_cli

    app.cli.add_command(retention_cli)
