"""`flask api-tokens webhook ...`: where a token's call events go, and their secret."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.db import get_session
from app.directory.pins import get_hasher
from app.outbound import webhooks


@click.command("webhook")
@click.argument("name")
@click.argument("url", required=False)
@click.option("--remove", is_flag=True, help="Send this token's events nowhere.")
@with_appcontext
def webhook_command(name: str, url: str | None, remove: bool) -> None:
    """Post the events of the calls token NAME places to URL (https), and print
    the secret that signs them; --remove stops them."""
    if remove == (url is not None):
        raise click.UsageError("give a URL, or --remove")
    session = get_session()
    try:
        token = webhooks.set_url(session, name, url, current_app.config["WEBHOOK_ALLOW_HTTP"])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    if token.webhook_url is None:
        click.echo(f"token {name}: no webhook")
        return
    click.echo(f"token {name}: events go to {token.webhook_url}")
    click.echo(f"signing secret: {webhooks.signing_secret(get_hasher(), token)}")


@click.command("webhook-secret")
@click.argument("name")
@click.option(
    "--rotate", is_flag=True, help="Make a new secret; the old one still signs for 24 hours."
)
@with_appcontext
def webhook_secret_command(name: str, rotate: bool) -> None:
    """Print the secret that signs token NAME's webhook events (whsec_...)."""
    session = get_session()
    try:
        token = (
            webhooks.rotate_secret(session, name) if rotate else webhooks.token_named(session, name)
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(webhooks.signing_secret(get_hasher(), token))


COMMANDS = (webhook_command, webhook_secret_command)
