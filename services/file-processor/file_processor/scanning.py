"""Malware scanning: a small Protocol, a built-in scanner of known-bad shapes, and clamd.

The built-in scanner is not an antivirus: it refuses what an upload of pictures, PDFs and text
never needs to contain — executables, archives, the EICAR test signature, active PDF content and
images that are also something else (polyglots). ClamAV adds signatures when ``PRS_CLAMD_URL``
is set.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from file_processor.sniffing import ARCHIVE, EXECUTABLE, HTML, PDF, Sniffed
from prs_shared.messaging.errors import TransientError

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

# Markup a browser or interpreter would act on, hidden inside an image's bytes. Plain substring
# searches over the lowered bytes: a case-insensitive regex over megabytes is ~20x slower.
_ACTIVE_MARKUP = (
    b"<script",
    b"<html",
    b"<!doctype html",
    b"<iframe",
    b"<svg",
    b"<object",
    b"<embed",
    b"<body",
    b"<?php",
    b"javascript:",
)
# PDF names that run code, start programs or carry files. Names may hide letters as #xx.
_PDF_ACTIVE_NAMES = {b"/javascript", b"/js", b"/launch", b"/embeddedfile", b"/embeddedfiles"}
_PDF_NAME = re.compile(rb"/[A-Za-z0-9#]+")
_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_ZIP_END = b"PK\x05\x06"


@dataclass(frozen=True)
class Verdict:
    clean: bool
    scanner: str
    reason: str | None = None


class Scanner(Protocol):
    """Looks at a file's bytes; returns whether it is clean and, if not, why."""

    name: str

    async def scan(self, data: bytes, sniffed: Sniffed) -> Verdict: ...


class ScannerUnavailable(TransientError):
    """The scanner could not be asked (clamd down); worth another try later."""


class BuiltinScanner:
    name = "builtin"
    inline_limit = 256 * 1024
    """Larger files are scanned on a thread, off the event loop."""

    async def scan(self, data: bytes, sniffed: Sniffed) -> Verdict:
        if len(data) <= self.inline_limit:
            reason = builtin_findings(data, sniffed)
        else:
            reason = await asyncio.to_thread(builtin_findings, data, sniffed)
        return Verdict(reason is None, self.name, reason)


def builtin_findings(data: bytes, sniffed: Sniffed) -> str | None:
    """Why the built-in rules refuse ``data``, or None."""
    if EICAR in data:
        return "EICAR test signature found"
    if sniffed.kind == EXECUTABLE:
        return "executable content"
    if sniffed.kind == ARCHIVE:
        return "archives are not accepted"
    if sniffed.kind == HTML:
        return "HTML or script content"
    if sniffed.is_image:
        lowered = data.lower()
        if any(marker in lowered for marker in _ACTIVE_MARKUP):
            return "polyglot: image bytes also hold HTML or script"
        # A ZIP is read from its end record, so an image with one appended is also an archive.
        if _ZIP_END in data[-66_000:]:
            return "polyglot: image bytes also hold an archive"
    if sniffed.kind == PDF:
        found = pdf_active_names(data)
        if found:
            return "PDF with active content: " + ", ".join(sorted(found))
    return None


def pdf_active_names(data: bytes) -> set[str]:
    """Active PDF names in the raw bytes (compressed object streams are parsed elsewhere)."""
    found: set[str] = set()
    for match in _PDF_NAME.finditer(data):
        name = match.group()
        if b"#" in name:
            name = _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), name)
        if name.lower() in _PDF_ACTIVE_NAMES:
            found.add(name.decode("latin-1"))
    return found


class ClamdScanner:
    """clamd INSTREAM over a unix (``unix:///path``) or TCP (``tcp://host:port``) socket."""

    name = "clamav"
    chunk = 64 * 1024

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("unix", "tcp"):
            raise ValueError(f"clamd URL must be unix:// or tcp://, not {url!r}")
        self._unix = parts.path if parts.scheme == "unix" else None
        self._host = parts.hostname or "localhost"
        self._port = parts.port or 3310
        self._timeout = timeout

    async def scan(self, data: bytes, sniffed: Sniffed) -> Verdict:
        try:
            reply = await asyncio.wait_for(self._instream(data), self._timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise ScannerUnavailable(f"clamd unavailable: {exc!r}") from exc
        answer = reply.rstrip(b"\x00\n").decode("utf-8", "replace")
        result = answer.split(":", 1)[-1].strip()
        if result == "OK":
            return Verdict(True, self.name)
        if result.endswith("FOUND"):
            return Verdict(False, self.name, f"ClamAV: {result[: -len('FOUND')].strip()}")
        raise ScannerUnavailable(f"clamd answered {answer!r}")

    async def _instream(self, data: bytes) -> bytes:
        if self._unix is not None:
            reader, writer = await asyncio.open_unix_connection(self._unix)
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(b"zINSTREAM\x00")
            for start in range(0, len(data), self.chunk):
                piece = data[start : start + self.chunk]
                writer.write(struct.pack(">I", len(piece)) + piece)
                await writer.drain()
            writer.write(struct.pack(">I", 0))
            await writer.drain()
            return await reader.readuntil(b"\x00")
        finally:
            writer.close()


async def scan_all(scanners: Sequence[Scanner], data: bytes, sniffed: Sniffed) -> Verdict:
    """The first refusal, or a clean verdict naming every scanner that looked."""
    for scanner in scanners:
        verdict = await scanner.scan(data, sniffed)
        if not verdict.clean:
            return verdict
    return Verdict(True, "+".join(s.name for s in scanners))
