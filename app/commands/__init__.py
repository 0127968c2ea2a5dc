"""The `flask` commands. Those that use several packages live here (`flask users`,
`flask call simulate`); a command of one package stays in it (app/flows/cli.py)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.commands.directory import demo_cli, directory_cli, groups_cli, users_cli
    from app.commands.simulator import call_cli
    from app.flows.cli import flows_cli
    from app.outbound.fake_provider import fake_provider_command

    call_cli.add_command(fake_provider_command)
    for group in (users_cli, groups_cli, directory_cli, demo_cli, flows_cli, call_cli):
        app.cli.add_command(group)
