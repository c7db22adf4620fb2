"""The messaging tables every service has: inbox (processed message ids), outbox, and the
crash counts of redelivered messages."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from prs_shared.db.types import UTCDateTime

messaging_metadata = MetaData()

inbox = Table(
    "inbox",
    messaging_metadata,
    Column("message_id", String(36), primary_key=True),
    Column("message_type", String(200), nullable=False),
    Column("task_id", String(36), nullable=True),
    Column("processed_at", UTCDateTime(), nullable=False),
    # The outcome is kept so that a redelivered message can re-announce it without re-running.
    Column("result", JSON, nullable=True),
    Column("duration_ms", Float, nullable=True),
    Index("ix_inbox_processed_at", "processed_at"),
)

outbox = Table(
    "outbox",
    messaging_metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("message_id", String(36), nullable=False),
    Column("exchange", String(255), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=True),
    Column("priority", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
)

delivery_attempts = Table(
    "delivery_attempts",
    messaging_metadata,
    # The message id (or a hash of a raw message's body): see Delivery.key.
    Column("key", String(200), primary_key=True),
    # Times a redelivered message was started; each start past the first followed a crash.
    Column("attempts", Integer, nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    Index("ix_delivery_attempts_last_at", "last_at"),
)
