"""Scan results remember the upload they judged, so the upload can be removed afterwards.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scan_results") as batch:
        batch.add_column(sa.Column("upload_path", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("upload_removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scan_results") as batch:
        batch.drop_column("upload_removed_at")
        batch.drop_column("upload_path")
