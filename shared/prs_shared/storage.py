"""The file store: where invoices, reports and processed files live, shared by the services.

Keys are relative, slash-separated paths (``invoices/org-1/2026/INV-2026-000001.pdf``). The local
implementation keeps them under one directory (a volume in docker-compose); another backend (an
object store) would implement the same Protocol.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol


class InvalidKey(ValueError):
    """A key that is absolute, climbs out of the store or is otherwise unusable."""


class FileStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def path(self, key: str) -> Path: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative`` resolved, refusing anything that ends up outside ``root``.

    ``os.path.join`` would silently drop ``root`` for an absolute ``relative``; resolving and
    checking ``is_relative_to`` also catches ``..`` and symlinks that point outside.
    """
    if not relative or "\x00" in relative:
        raise InvalidKey("empty key or NUL byte")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part == ".." for part in pure.parts):
        raise InvalidKey(f"key must be relative and stay inside the store: {relative!r}")
    base = root.resolve()
    candidate = (base / pure).resolve()
    if not candidate.is_relative_to(base) or candidate == base:
        raise InvalidKey(f"key resolves outside the store: {relative!r}")
    return candidate


class LocalFileStore:
    """Files under one directory; writes are atomic (temporary file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return safe_join(self.root, key)

    def put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except InvalidKey:
            return False

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
