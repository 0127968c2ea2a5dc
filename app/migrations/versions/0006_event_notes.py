"""Glue's own notes on an event, apart from the fields the platform sent

Revision ID: 0006
Revises: 0005

Events stored before this revision keep those notes in their payload, as
`_dropped` and `_error`: they are left as they are (a field a platform sent
under either name cannot be told from them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_events") as batch:
        batch.add_column(sa.Column("notes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_events") as batch:
        batch.drop_column("notes")
