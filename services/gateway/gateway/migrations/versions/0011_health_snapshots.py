"""Health snapshots: one row per scheduled health check, with its status, reasons and checks.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010_stalled_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_snapshots",
        sa.Column("snapshot_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("notified", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("snapshot_id"),
    )
    op.create_index("ix_health_snapshots_at", "health_snapshots", ["at"])


def downgrade() -> None:
    op.drop_index("ix_health_snapshots_at", table_name="health_snapshots")
    op.drop_table("health_snapshots")
