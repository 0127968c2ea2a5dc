"""what the admin overview reads: how far each call got, how long each request
took, the admins' time zones, and indexes on the times lists filter by

Revision ID: 0011
Revises: 0010

Calls stored before this revision with a verification attempt reached the PIN
(a check needs the claim and the PIN); the others are left at None, which the
funnel counts as called only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("reached", sa.String(length=8), nullable=True))
        batch.create_index("ix_calls_started_at", ["started_at"])
    with op.batch_alter_table("call_events") as batch:
        batch.add_column(sa.Column("duration_ms", sa.Integer(), nullable=True))
        batch.create_index("ix_call_events_received_at", ["received_at"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE calls SET reached = 'pin' WHERE id IN "
        "(SELECT call_id FROM verification_attempts WHERE call_id IS NOT NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("time_zone")
    with op.batch_alter_table("call_events") as batch:
        batch.drop_index("ix_call_events_received_at")
        batch.drop_column("duration_ms")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_started_at")
        batch.drop_column("reached")
