"""`flask retention purge`: delete call records older than GLUE_RETENTION_DAYS."""

from __future__ import annotations

import logging
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from app.db import make_engine
from app.models import utcnow
from app.outbound import idempotency
from app.retention import purge as purging

log = logging.getLogger(__name__)

retention_cli = AppGroup("retention", help="Delete call records past their retention period.")
# A century: more would be no cutoff at all (and past what a date can hold).
MAX_DAYS = 36500


@retention_cli.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(1, MAX_DAYS),
    help="Days to keep (default: GLUE_RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 5000),
    default=purging.DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Rows deleted per transaction.",
)
def purge_command(days: int | None, dry_run: bool, batch_size: int) -> None:
    """Delete finished calls, their events and attempts, expired codes and old
    call actions, all older than DAYS, and the API's idempotency keys and the
    web's call-form nonces older than 24 hours; print how many rows per table."""
    days = days if days is not None else int(current_app.config["RETENTION_DAYS"])
    if not 1 <= days <= MAX_DAYS:
        raise click.UsageError(f"GLUE_RETENTION_DAYS must be 1-{MAX_DAYS}")
    cutoff = utcnow() - timedelta(days=days)
    # An engine of its own, without the short waits a caller's request gets
    # (as for migrations): a scan of a large table may take seconds, and the
    # batches keep each write transaction short anyway.
    engine = make_engine(current_app.config["DATABASE_URL"])
    try:
        with Session(engine) as session:
            if dry_run:
                counts = purging.count(session, cutoff)
            else:
                counts = purging.purge(session, cutoff, batch_size)
                log.info("retention purge, older than %s days: %s", days, counts)
            expired = idempotency.purge(session, dry_run)
    finally:
        engine.dispose()
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} rows older than {days} days (before {cutoff:%Y-%m-%d %H:%M} UTC):")
    for table in purging.TABLES:
        click.echo(f"{table}: {counts[table]}")
    # Kept 24 hours whatever the retention period: retries replayed, forms spent.
    click.echo(
        f"past 24 hours, {verb}: {expired['idempotency_keys']} idempotency keys, "
        f"{expired['form_nonces']} call-form nonces"
    )
