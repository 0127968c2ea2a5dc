"""scheduled calls, and the cancelling of calls

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_actions") as batch:
        batch.add_column(sa.Column("scheduled_for", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("cancel_requested_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("cancel_result", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_actions") as batch:
        batch.drop_column("cancel_result")
        batch.drop_column("cancel_requested_by")
        batch.drop_column("cancel_requested_at")
        batch.drop_column("scheduled_for")
