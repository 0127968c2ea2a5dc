"""flow versions, and the version each call started on

Revision ID: 0007
Revises: 0006

Every flow file in the flows directory that passes `flask forms check` becomes
version 1 of its flow; a file that does not is skipped, and said so in the log.
The directory is the app's FLOWS_DIR (`flask db upgrade`), or the Alembic
config's `flows_dir` attribute; without either, no flow is published here.
"""

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op
from flask import current_app, has_app_context

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    table = op.create_table(
        "flow_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=500), server_default="", nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_versions")),
        sa.UniqueConstraint("flow", "number", name=op.f("uq_flow_versions_flow")),
    )
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("flow_version", sa.Integer(), nullable=True))
    rows = _first_versions()
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("flow_version")
    op.drop_table("flow_versions")


def _first_versions() -> list[dict[str, object]]:
    """Version 1 of each flow file that passes the check, as rows."""
    # Imported here: the check is today's, whatever revision the schema is at.
    from app.directory.pins import PinPolicy
    from app.flows.loader import FlowFileError, load_flow_text

    directory = context.config.attributes.get("flows_dir")
    pins = None
    if directory is None and has_app_context():
        directory = current_app.config["FLOWS_DIR"]
        pins = PinPolicy.from_config(current_app.config)
    if directory is None or not Path(directory).is_dir():
        return []
    now = datetime.now(UTC).replace(tzinfo=None)
    rows: list[dict[str, object]] = []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            source = path.read_text(encoding="utf-8")
            load_flow_text(source, path.stem, str(path), pins)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("flow file %s not published: cannot read: %s", path, exc)
            continue
        except FlowFileError as exc:
            for problem in exc.problems:
                log.warning("flow file %s not published: %s", path, problem)
            continue
        rows.append(
            {
                "flow": path.stem,
                "number": 1,
                "source": source,
                "checksum": hashlib.sha256(source.encode("utf-8")).hexdigest(),
                "created_at": now,
                "created_by": "migration",
                "note": "",
                "origin": "migration",
            }
        )
        log.info("flow %s published as version 1", path.stem)
    return rows
