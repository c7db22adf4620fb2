"""Deal workflow tables: PRS replica, commissions, invoices, audit log, process records, reports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Amounts: NUMERIC(18, 4) on PostgreSQL; on SQLite an exact integer count of ten-thousandths
# (deal_workflow.columns.MoneyAmount converts).
MONEY = sa.Numeric(18, 4).with_variant(sa.BigInteger(), "sqlite")
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ID = sa.String(length=64)
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("commission_policy", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id"),
    )
    op.create_table(
        "users",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_index("ix_users_organization_id", "users", ["organization_id"])
    op.create_table(
        "deals",
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("client_id", ID, nullable=True),
        sa.Column("client_name", sa.String(length=200), nullable=False),
        sa.Column("value", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("salesperson_id", ID, nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("attachment_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("payment_status", sa.String(length=20), nullable=False),
        sa.Column("paid_total", MONEY, nullable=False),
        sa.Column("verification_reasons", sa.JSON(), nullable=False),
        sa.Column("state_changed_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("deal_id"),
    )
    op.create_index("ix_deals_org_state", "deals", ["organization_id", "state"])
    op.create_index("ix_deals_state_due", "deals", ["state", "due_date"])
    op.create_index("ix_deals_created_at", "deals", ["created_at"])
    op.create_table(
        "payments",
        sa.Column("payment_id", ID, nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("method", sa.String(length=50), nullable=False),
        sa.Column("recorded_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("payment_id"),
    )
    op.create_index("ix_payments_deal_id", "payments", ["deal_id"])
    op.create_index("ix_payments_received_at", "payments", ["received_at"])
    op.create_table(
        "attachment_verdicts",
        sa.Column("id", BIGINT_ID, autoincrement=True, nullable=False),
        sa.Column("file_id", sa.String(length=200), nullable=True),
        sa.Column("deal_id", ID, nullable=True),
        sa.Column("original_filename", sa.String(length=255), nullable=True),
        sa.Column("verdict", sa.String(length=50), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("recorded_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("file_id"),
    )
    op.create_index("ix_attachment_verdicts_deal_id", "attachment_verdicts", ["deal_id"])
    op.create_table(
        "commissions",
        sa.Column("commission_id", sa.String(length=36), nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("salesperson_id", ID, nullable=True),
        sa.Column("base_value", MONEY, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rate_description", sa.String(length=500), nullable=False),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("calculated_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.deal_id"]),
        sa.PrimaryKeyConstraint("commission_id"),
        sa.UniqueConstraint("deal_id"),
    )
    op.create_index("ix_commissions_organization_id", "commissions", ["organization_id"])
    op.create_table(
        "invoice_counters",
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "year"),
    )
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("file_key", sa.String(length=500), nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issued_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.deal_id"]),
        sa.PrimaryKeyConstraint("invoice_id"),
        sa.UniqueConstraint("deal_id"),
        sa.UniqueConstraint("organization_id", "year", "sequence", name="uq_invoices_org_year_seq"),
    )
    op.create_table(
        "audit_chain_heads",
        sa.Column("chain", ID, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIGINT_ID, autoincrement=True, nullable=False),
        sa.Column("chain", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("organization_id", ID, nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain", "seq", name="uq_audit_log_chain_seq"),
    )
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at"])
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"])
    op.create_table(
        "verification_reminders",
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("deal_ids", sa.JSON(), nullable=False),
        sa.Column("sent_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "day"),
    )
    op.create_table(
        "overdue_notices",
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("outstanding", MONEY, nullable=False),
        sa.Column("sent_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("deal_id", "period"),
    )
    op.create_table(
        "reports",
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("report_type", sa.String(length=30), nullable=False),
        sa.Column("organization_id", ID, nullable=True),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("sections_done", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("requested_at", UTC_TIME, nullable=False),
        sa.Column("completed_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("report_id"),
    )


def downgrade() -> None:
    op.drop_table("reports")
    op.drop_table("overdue_notices")
    op.drop_table("verification_reminders")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index("ix_audit_log_occurred_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("audit_chain_heads")
    op.drop_table("invoices")
    op.drop_table("invoice_counters")
    op.drop_index("ix_commissions_organization_id", table_name="commissions")
    op.drop_table("commissions")
    op.drop_index("ix_attachment_verdicts_deal_id", table_name="attachment_verdicts")
    op.drop_table("attachment_verdicts")
    op.drop_index("ix_payments_received_at", table_name="payments")
    op.drop_index("ix_payments_deal_id", table_name="payments")
    op.drop_table("payments")
    op.drop_index("ix_deals_created_at", table_name="deals")
    op.drop_index("ix_deals_state_due", table_name="deals")
    op.drop_index("ix_deals_org_state", table_name="deals")
    op.drop_table("deals")
    op.drop_index("ix_users_organization_id", table_name="users")
    op.drop_table("users")
    op.drop_table("organizations")
