"""Crash counts of redelivered messages (the runtime's delivery limit).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from prs_shared.db.migration_ops import create_delivery_attempts_v1, drop_delivery_attempts_v1

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_delivery_attempts_v1()


def downgrade() -> None:
    drop_delivery_attempts_v1()
