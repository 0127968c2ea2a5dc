"""`flask api-tokens ...`: keys for host applications that use the JSON API."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.auth import tokens
from app.db import get_session
from app.models import ApiToken

api_tokens_cli = AppGroup("api-tokens", help="Tokens for the JSON API.")


@api_tokens_cli.command("create")
@click.argument("name")
def create_command(name: str) -> None:
    """Create a token for host application NAME and print it (shown only now)."""
    session = get_session()
    try:
        token = tokens.create(session, name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(token)


@api_tokens_cli.command("list")
def list_command() -> None:
    """List tokens by name (never the tokens themselves)."""
    for found in get_session().scalars(select(ApiToken).order_by(ApiToken.name)):
        used = f"{found.last_used_at:%Y-%m-%d %H:%M} UTC" if found.last_used_at else "never"
        state = "active" if found.active else "revoked"
        click.echo(f"{found.name}\t{state}\tlast used {used}")


@api_tokens_cli.command("revoke")
@click.argument("name")
def revoke_command(name: str) -> None:
    """Revoke the token NAME."""
    session = get_session()
    try:
        tokens.revoke(session, name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(f"token {name} revoked")
