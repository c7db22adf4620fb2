"""PDF checks with a real parser: it must open, not be encrypted, and run nothing.

The raw byte scan (:func:`file_processor.scanning.pdf_active_names`) cannot see inside
compressed object streams; walking the parsed object graph can.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

ACTIVE_KEYS = frozenset({"/JavaScript", "/JS", "/EmbeddedFiles", "/EmbeddedFile", "/RichMedia"})
ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/ImportData", "/RichMediaExecute"})
MAX_OBJECTS = 200_000


class PdfRefused(ValueError):
    """Not a PDF we accept."""


@dataclass(frozen=True)
class PdfFacts:
    pages: int
    version: str


def inspect_pdf(data: bytes) -> PdfFacts:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise PdfRefused("encrypted PDFs are not accepted")
        pages = len(reader.pages)
        found = _active_content(reader.trailer)
        version = reader.pdf_header.removeprefix("%PDF-")
    except PdfRefused:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise PdfRefused(f"not a valid PDF: {exc}") from exc
    if found:
        raise PdfRefused("PDF with active content: " + ", ".join(sorted(found)))
    if pages < 1:
        raise PdfRefused("PDF without pages")
    return PdfFacts(pages=pages, version=version)


def _active_content(root: Any) -> set[str]:
    """Names of active content anywhere in the object graph reachable from ``root``."""
    found: set[str] = set()
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [root]
    visited = 0
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                continue
            seen.add(ref)
            node = node.get_object()
        visited += 1
        if visited > MAX_OBJECTS:
            raise PdfRefused("PDF object graph too large to check")
        if isinstance(node, DictionaryObject):
            for key, value in node.items():
                if key in ACTIVE_KEYS:
                    found.add(str(key))
                if key == "/S" and isinstance(value, NameObject) and value in ACTIVE_ACTIONS:
                    found.add(str(value))
                stack.append(value)
        elif isinstance(node, ArrayObject):
            stack.extend(node)
    return found
