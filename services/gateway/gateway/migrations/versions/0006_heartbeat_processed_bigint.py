"""A worker's processed count outgrows 32 bits: a 64-bit column.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite's INTEGER is 64-bit already (and cannot alter a column in place).
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("service_heartbeats", "processed", type_=sa.BigInteger())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("service_heartbeats", "processed", type_=sa.Integer())
