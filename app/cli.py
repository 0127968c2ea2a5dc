"""Registers the admin commands (`flask users ...`, `flask forms ...`, ...)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.directory.cli import demo_cli, directory_cli, groups_cli, users_cli
    from app.flows.cli import forms_cli

    for group in (users_cli, groups_cli, directory_cli, demo_cli, forms_cli):
        app.cli.add_command(group)
