"""Commands to the file-processor and the events it publishes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from prs_shared.messaging import catalog
from prs_shared.messaging.common import BigCount, BoundedStr, FileKeys, Identifier, LongStr
from prs_shared.messaging.messages import Message

FileType = Literal["profile_picture", "deal_attachment"]


class ProcessFile(Message):
    """Validate, scan and derive variants of an uploaded file."""

    file_type: FileType
    stored_path: str = Field(
        min_length=1, max_length=500, description="Path relative to the upload directory."
    )
    original_filename: str = Field(min_length=1, max_length=255)
    content_type: str | None = Field(default=None, max_length=100)
    size: BigCount
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    user_id: Identifier | None = None
    deal_id: Identifier | None = None


class FileProcessed(Message):
    file_id: BoundedStr
    file_type: FileType
    variants: FileKeys = Field(description="Variant name → file store key.")
    user_id: Identifier | None = None
    deal_id: Identifier | None = None
    scan: BoundedStr = Field(description="Scan verdict: clean.")


class FileRejected(Message):
    file_id: BoundedStr | None = Field(
        default=None, description="The attachment id the file was uploaded as, when known."
    )
    file_type: FileType
    original_filename: str = Field(max_length=255)
    reason: LongStr
    user_id: Identifier | None = None
    deal_id: Identifier | None = None


PROCESS_FILE = catalog.command(
    "file.process",
    ProcessFile,
    "file_processing",
    "Process an uploaded file.",
    # Virus scan, image resizing and PDF work run in threads; a large PDF takes minutes.
    time_limit=(120, 180),
)
FILE_PROCESSED = catalog.event("file.processed", FileProcessed, "A file passed and was stored.")
FILE_REJECTED = catalog.event("file.rejected", FileRejected, "A file was refused, with why.")
