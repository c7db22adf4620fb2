"""The service's own tables: its replica of PRS data and what it owns (commissions, invoices,
the audit log, reminders, overdue notices, reports)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from deal_workflow.columns import MoneyAmount
from prs_shared.db.types import UTCDateTime

ID = String(64)


class Base(DeclarativeBase):
    pass


# --- replica of PRS data (written only by the PRS event handlers) --------------------------


class Organization(Base):
    __tablename__ = "organizations"

    organization_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    commission_policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, index=True)
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Deal(Base):
    """A PRS deal (replicated fields) and its workflow state here (owned fields)."""

    __tablename__ = "deals"

    deal_id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID)
    client_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    client_name: Mapped[str] = mapped_column(String(200))
    value: Mapped[Decimal] = mapped_column(MoneyAmount())
    currency: Mapped[str] = mapped_column(String(3))
    salesperson_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    attachment_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer)
    # Owned by this service:
    state: Mapped[str] = mapped_column(String(30))
    payment_status: Mapped[str] = mapped_column(String(20))
    paid_total: Mapped[Decimal] = mapped_column(MoneyAmount())
    verification_reasons: Mapped[list[str]] = mapped_column(JSON)
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_deals_org_state", "organization_id", "state"),
        Index("ix_deals_state_due", "state", "due_date"),
        Index("ix_deals_created_at", "created_at"),
    )


class Payment(Base):
    __tablename__ = "payments"

    payment_id: Mapped[str] = mapped_column(ID, primary_key=True)
    deal_id: Mapped[str] = mapped_column(ID, index=True)
    organization_id: Mapped[str] = mapped_column(ID)
    amount: Mapped[Decimal] = mapped_column(MoneyAmount())
    currency: Mapped[str] = mapped_column(String(3))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    method: Mapped[str] = mapped_column(String(50))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AttachmentVerdict(Base):
    """What the file-processor said about an uploaded deal attachment."""

    __tablename__ = "attachment_verdicts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    file_id: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    deal_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    organization_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    """Whose upload it was (None: a key without organization); it only counts for their deals."""
    original_filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    verdict: Mapped[str] = mapped_column(String(50))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- owned ----------------------------------------------------------------------------------


class Commission(Base):
    """At most one per deal: recalculating updates it."""

    __tablename__ = "commissions"

    commission_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.deal_id"), unique=True)
    organization_id: Mapped[str] = mapped_column(ID, index=True)
    salesperson_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    base_value: Mapped[Decimal] = mapped_column(MoneyAmount())
    amount: Mapped[Decimal] = mapped_column(MoneyAmount())
    currency: Mapped[str] = mapped_column(String(3))
    rate_description: Mapped[str] = mapped_column(String(500))
    breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    calculated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InvoiceCounter(Base):
    """The last invoice number issued per organization and year; locked while issuing."""

    __tablename__ = "invoice_counters"

    organization_id: Mapped[str] = mapped_column(ID, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer)


class Invoice(Base):
    __tablename__ = "invoices"

    invoice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID)
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40))
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.deal_id"), unique=True)
    file_key: Mapped[str] = mapped_column(String(500))
    total: Mapped[Decimal] = mapped_column(MoneyAmount())
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("organization_id", "year", "sequence", name="uq_invoices_org_year_seq"),
    )


class AuditChainHead(Base):
    """The last entry of one audit chain; locked while appending to it."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(ID, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """Append-only: who, when, what, before, after, why — chained by hash."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    chain: Mapped[str] = mapped_column(ID)
    seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("chain", "seq", name="uq_audit_log_chain_seq"),
        Index("ix_audit_log_occurred_at", "occurred_at"),
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
    )


class VerificationReminder(Base):
    """One reminder per organization and day."""

    __tablename__ = "verification_reminders"

    organization_id: Mapped[str] = mapped_column(ID, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    deal_ids: Mapped[list[str]] = mapped_column(JSON)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OverdueNotice(Base):
    """One overdue announcement per deal and period (month)."""

    __tablename__ = "overdue_notices"

    deal_id: Mapped[str] = mapped_column(ID, primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    outstanding: Mapped[Decimal] = mapped_column(MoneyAmount())
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Report(Base):
    """An audit report's progress and, when complete, its files."""

    __tablename__ = "reports"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_type: Mapped[str] = mapped_column(String(30))
    organization_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    progress: Mapped[int] = mapped_column(Integer)
    sections_done: Mapped[list[str]] = mapped_column(JSON)
    files: Mapped[dict[str, str]] = mapped_column(JSON)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
