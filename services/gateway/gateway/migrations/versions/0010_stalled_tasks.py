"""Task monitoring's flag on stuck tasks: when, why, and how often they were requeued.

Revision ID: 0010_stalled_tasks
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_stalled_tasks"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("stalled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("stalled_reason", sa.String(length=20), nullable=True))
        batch.add_column(
            sa.Column("stalled_requeues", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_tasks_stalled_at", "tasks", ["stalled_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_stalled_at", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("stalled_requeues")
        batch.drop_column("stalled_reason")
        batch.drop_column("stalled_at")
