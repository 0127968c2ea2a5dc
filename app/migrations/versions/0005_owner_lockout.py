"""lockout counters for attempts from a record's own phones

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "groups")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("owner_failed_attempts", sa.Integer(), nullable=False, server_default="0")
            )
            batch.add_column(
                sa.Column("owner_lockouts", sa.Integer(), nullable=False, server_default="0")
            )
            batch.add_column(sa.Column("owner_locked_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owner_locked_until")
            batch.drop_column("owner_lockouts")
            batch.drop_column("owner_failed_attempts")
