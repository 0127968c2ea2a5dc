"""Registers the admin commands (`flask users ...`, `flask forms ...`, ...)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.calls.fake_provider import fake_provider_command
    from app.directory.cli import demo_cli, directory_cli, groups_cli, users_cli
    from app.flows.cli import forms_cli
    from app.simulator import call_cli

    call_cli.add_command(fake_provider_command)
    for group in (users_cli, groups_cli, directory_cli, demo_cli, forms_cli, call_cli):
        app.cli.add_command(group)
