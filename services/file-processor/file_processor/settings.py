"""File-processor configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from sqlalchemy.engine import make_url

from prs_shared.db.engine import is_sqlite
from prs_shared.settings import ServiceSettings


class FileProcessorSettings(ServiceSettings):
    service_name: ClassVar[str] = "file-processor"
    database_url: str | None = Field(
        default=None, validation_alias="PRS_FILE_PROCESSOR_DATABASE_URL"
    )
    metrics_port: int = Field(
        default=9102, ge=0, le=65535, validation_alias="PRS_FILE_PROCESSOR_METRICS_PORT"
    )
    upload_dir: Path | None = Field(
        default=None,
        validation_alias="PRS_UPLOAD_DIR",
        description="Where the gateway saves uploads; <data dir>/uploads when unset.",
    )
    max_image_pixels: int = Field(
        default=40_000_000,
        ge=1,
        validation_alias="PRS_MAX_IMAGE_PIXELS",
        description="Images with more pixels are refused as decompression bombs.",
    )
    max_file_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1,
        validation_alias="PRS_FILE_MAX_BYTES",
        description="Files larger than this are refused before they are read.",
    )
    image_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        validation_alias="PRS_FILE_IMAGE_WORKERS",
        description="Threads decoding and encoding images (and parsing PDFs) at once.",
    )
    allow_text_attachments: bool = Field(
        default=True,
        validation_alias="PRS_FILE_ALLOW_TEXT_ATTACHMENTS",
        description="Accept plain-text and CSV deal attachments.",
    )
    clamd_url: str | None = Field(
        default=None,
        validation_alias="PRS_CLAMD_URL",
        description="clamd to scan with as well: unix:///run/clamav/clamd.ctl or "
        "tcp://host:3310; unset: the built-in scanner only.",
    )
    retention_uploads_hours: float = Field(
        default=1,
        gt=0,
        validation_alias="PRS_RETENTION_UPLOADS_HOURS",
        description="An upload that was processed is deleted this long after (a redelivery of "
        "its command within that time still finds it).",
    )
    retention_quarantine_days: float = Field(
        default=7,
        gt=0,
        validation_alias="PRS_RETENTION_QUARANTINE_DAYS",
        description="A rejected upload stays in quarantine (for inspection) this long, then is "
        "deleted.",
    )
    cleanup_batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        validation_alias="PRS_CLEANUP_BATCH_SIZE",
        description="Uploads one system cleanup run deletes at most, per kind; the rest wait "
        "for the next run.",
    )
    clamd_timeout: float = Field(default=30.0, gt=0, validation_alias="PRS_CLAMD_TIMEOUT")

    def resolved_upload_dir(self) -> Path:
        return (self.upload_dir or self.data_dir / "uploads").resolve()

    def rejections_database_url(self) -> str:
        """Where rejections commit on their own, apart from the message's transaction.

        PostgreSQL: the service database itself. SQLite: a sibling file, because a handler's
        transaction holds the database's only write lock for as long as the handler runs.
        """
        url = self.resolved_database_url()
        if not is_sqlite(url):
            return url
        parsed = make_url(url)
        path = Path(parsed.database or "file-processor.sqlite3")
        apart = path.with_name(f"{path.stem}-rejections{path.suffix or '.sqlite3'}")
        return parsed.set(database=str(apart)).render_as_string(hide_password=False)
