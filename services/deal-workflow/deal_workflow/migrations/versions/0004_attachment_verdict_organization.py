"""Attachment verdicts remember the organization of the upload they are about.

A verdict only counts for a deal of that organization (or when the upload came from a key without
organization), so another tenant's upload cannot fail a deal's verification.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "attachment_verdicts",
        sa.Column("organization_id", sa.String(length=64), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("attachment_verdicts") as batch:
        batch.drop_column("organization_id")
