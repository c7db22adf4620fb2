"""Files arriving at the gateway: uploads saved under the upload directory, and the seed's
``file_path`` form checked to stay inside it."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prs_shared.storage import InvalidKey, safe_join

CHUNK = 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class UploadTooLarge(Exception):
    pass


class BadPath(ValueError):
    pass


class AsyncReadable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class StoredUpload:
    relative_path: str
    size: int
    sha256: str


def sanitize_filename(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")) or "upload"
    cleaned = _SAFE_NAME.sub("_", base).strip("._") or "upload"
    return cleaned[:120]


async def save_upload(
    source: AsyncReadable, original_filename: str, upload_dir: Path, max_bytes: int
) -> StoredUpload:
    """Copy an upload into ``<upload dir>/<uuid>/<name>``, hashing it; refuse past ``max_bytes``."""
    relative = f"{uuid.uuid4().hex}/{sanitize_filename(original_filename)}"
    target = upload_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    try:
        with target.open("wb") as out:
            while chunk := await source.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        target.parent.rmdir()
        raise
    return StoredUpload(relative, size, digest.hexdigest())


def resolve_inside(upload_dir: Path, file_path: str) -> Path:
    """The regular file ``file_path`` names inside ``upload_dir``; anything else is BadPath.

    Refused: percent-encoded characters (no decoding trick gets past), NUL bytes, ``..``,
    absolute paths outside the directory and symlinks whose target is outside.
    """
    if _PERCENT_ESCAPE.search(file_path):
        raise BadPath("file_path must not contain percent-encoded characters")
    base = upload_dir.resolve()
    candidate = Path(file_path)
    if candidate.is_absolute():
        resolved = candidate.resolve()
        if not resolved.is_relative_to(base):
            raise BadPath("file_path is outside the upload directory")
        relative = str(resolved.relative_to(base))
    else:
        relative = file_path
    try:
        path = safe_join(base, relative)
    except InvalidKey as exc:
        raise BadPath(f"file_path is not allowed: {exc}") from exc
    if not path.is_file():
        raise BadPath("file_path does not name a file in the upload directory")
    return path


def hash_file(path: Path, max_bytes: int) -> StoredUpload:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge
            digest.update(chunk)
    return StoredUpload("", size, digest.hexdigest())
