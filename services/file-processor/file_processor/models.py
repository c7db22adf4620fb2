"""The file-processor's own tables: stored files (with their variants) and scan results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from prs_shared.db.types import UTCDateTime


class Base(DeclarativeBase):
    pass


class StoredFile(Base):
    """A file that passed validation and scanning, and where its outputs are in the file store.

    One row per (content, file type, owner): the same picture uploaded twice by the same user is
    stored once, and ``file_id`` is derived from those three (see ``processing.file_id_for``).
    """

    __tablename__ = "stored_files"
    __table_args__ = (UniqueConstraint("sha256", "file_type", "owner_key"),)

    file_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    file_type: Mapped[str] = mapped_column(String(32))
    owner_key: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    deal_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    original_filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sniffed_type: Mapped[str] = mapped_column(String(100))
    variants: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_message_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScanResult(Base):
    """The verdict on one processed message's file: clean (with the stored file) or rejected.

    Rejections are committed apart from the message's transaction (it rolls back when the task
    fails); on SQLite they live in the service's ``-rejections`` database file.
    """

    __tablename__ = "scan_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    file_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    file_type: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    original_filename: Mapped[str] = mapped_column(String(255))
    sniffed_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    scanner: Mapped[str] = mapped_column(String(100))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    upload_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    """The upload judged (relative to the upload directory); removed by the system cleanup."""
    upload_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class KnownOwner(Base):
    """The organization of a user or deal files may belong to, from PRS snapshots."""

    __tablename__ = "known_owners"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    """``user`` or ``deal``."""
    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
