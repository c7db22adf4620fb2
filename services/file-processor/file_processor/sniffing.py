"""What a file really is, from its first bytes (the name and the declared type are not trusted)."""

from __future__ import annotations

import re
from dataclasses import dataclass

JPEG = "jpeg"
PNG = "png"
GIF = "gif"
WEBP = "webp"
PDF = "pdf"
TEXT = "text"
EXECUTABLE = "executable"
ARCHIVE = "archive"
HTML = "html"
UNKNOWN = "unknown"

IMAGE_KINDS = frozenset({JPEG, PNG, GIF, WEBP})

MIME = {
    JPEG: "image/jpeg",
    PNG: "image/png",
    GIF: "image/gif",
    WEBP: "image/webp",
    PDF: "application/pdf",
    TEXT: "text/plain",
    EXECUTABLE: "application/x-executable",
    ARCHIVE: "application/x-archive",
    HTML: "text/html",
    UNKNOWN: "application/octet-stream",
}

EXTENSION = {JPEG: "jpg", PNG: "png", GIF: "gif", WEBP: "webp", PDF: "pdf", TEXT: "txt"}

_EXECUTABLE_MAGIC = (
    b"MZ",  # DOS / Windows PE
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O, both word sizes and byte orders
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal (also Java class files)
    b"#!",  # scripts with an interpreter line
)
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"PK\x07\x08",
    b"\x1f\x8b",  # gzip
    b"BZh",
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\x28\xb5\x2f\xfd",  # zstd
    b"MSCF",  # cabinet
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE2 compound file (legacy Office, MSI)
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<script", b"<svg", b"<?xml", b"<?php", b"<body")


@dataclass(frozen=True)
class Sniffed:
    kind: str

    @property
    def mime(self) -> str:
        return MIME[self.kind]

    @property
    def is_image(self) -> bool:
        return self.kind in IMAGE_KINDS


def sniff(data: bytes) -> Sniffed:
    """Classify ``data`` by its magic number; text only if it is clean UTF-8 without controls."""
    head = data[:512]
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(JPEG)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(PNG)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed(GIF)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed(WEBP)
    # Readers accept %PDF- anywhere in the first kilobyte, so this does too.
    if b"%PDF-" in data[:1024]:
        return Sniffed(PDF)
    if head.startswith(_EXECUTABLE_MAGIC):
        return Sniffed(EXECUTABLE)
    if head.startswith(_ARCHIVE_MAGIC) or data[257:262] == b"ustar":
        return Sniffed(ARCHIVE)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(_HTML_STARTS):
        return Sniffed(HTML)
    if _is_text(data):
        return Sniffed(TEXT)
    return Sniffed(UNKNOWN)


def _is_text(data: bytes) -> bool:
    if not data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _CONTROL.search(text) is None
