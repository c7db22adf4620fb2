"""The pipeline for one uploaded file: locate, verify, sniff, scan, decode, derive, store.

Every refusal raises :class:`FileRefused` with a reason meant for people; the handler turns it
into a rejection (see :mod:`file_processor.rejections`). Blocking work (reading the upload,
hashing, Pillow, pypdf, writing outputs) runs on the bounded thread pool in :class:`Pipeline`.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from file_processor import imaging, pdfs
from file_processor.scanning import Scanner, scan_all
from file_processor.sniffing import EXTENSION, IMAGE_KINDS, PDF, TEXT, Sniffed, sniff
from prs_shared.messaging.files import ProcessFile
from prs_shared.storage import FileStore, InvalidKey, safe_join

P = ParamSpec("P")
T = TypeVar("T")

PROFILE_PICTURE = "profile_picture"
DEAL_ATTACHMENT = "deal_attachment"
FILE_ID_NAMESPACE = uuid.UUID("6f1b1d5e-2f1a-4c55-9a55-3c1f5e0f9b7e")


class FileRefused(Exception):
    """The file is not accepted; ``reason`` says why, ``check`` which check refused it."""

    def __init__(self, reason: str, check: str = "validation", sniffed: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.check = check
        self.sniffed = sniffed


@dataclass(frozen=True)
class Upload:
    """A verified upload: its bytes (size and SHA-256 as the command said) and what they are."""

    data: bytes
    sha256: str
    sniffed: Sniffed


@dataclass(frozen=True)
class Processed:
    file_id: str
    sniffed: Sniffed
    scanner: str
    variants: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)


def owner_key(command: ProcessFile, organization_id: str | None = None) -> str:
    """Who the file belongs to: its user or deal, else the uploader's organization.

    A file without user or deal from a scoped key belongs to that key's organization, so the
    same content uploaded by two organizations is two files: neither learns of the other's
    upload through a duplicate.
    """
    if command.file_type == PROFILE_PICTURE:
        kind, owner, ownerless = "user", command.user_id, "anonymous"
    else:
        kind, owner, ownerless = "deal", command.deal_id, "unassigned"
    if owner:
        return f"{kind}:{owner}"
    return ownerless if organization_id is None else f"{ownerless}@org:{organization_id}"


def file_id_for(command: ProcessFile, organization_id: str | None = None) -> str:
    """Same content, file type and owner → same id (and the same keys in the file store)."""
    name = f"{command.file_type}|{owner_key(command, organization_id)}|{command.sha256}"
    return str(uuid.uuid5(FILE_ID_NAMESPACE, name))


def store_prefix(command: ProcessFile, file_id: str) -> str:
    if command.file_type == PROFILE_PICTURE:
        owner, folder = command.user_id or "anonymous", "profile_pictures"
    else:
        owner, folder = command.deal_id or "unassigned", "deal_attachments"
    if owner in (".", ".."):
        raise FileRefused(f"unusable owner id {owner!r}")
    return f"{folder}/{owner}/{file_id}"


def allowed_kinds(file_type: str, *, allow_text: bool) -> frozenset[str]:
    if file_type == PROFILE_PICTURE:
        return IMAGE_KINDS
    extra = {PDF, TEXT} if allow_text else {PDF}
    return IMAGE_KINDS | extra


def read_upload(path: Path, expected_size: int, max_bytes: int, expected_sha256: str) -> Upload:
    """The upload's bytes, if they are the ones the command describes."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FileRefused("the upload is not a regular file")
        if size != expected_size:
            raise FileRefused(
                f"size mismatch: the file has {size} bytes, the command says {expected_size}"
            )
        if size > max_bytes:
            raise FileRefused(f"the file is larger than {max_bytes} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileRefused("the upload does not exist") from None
    if len(data) != expected_size:
        raise FileRefused("the file changed while it was read")
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise FileRefused("SHA-256 mismatch: the file is not the one that was uploaded")
    return Upload(data, digest, sniff(data))


@dataclass
class Pipeline:
    """What processing a file needs, besides the command."""

    upload_dir: Path
    store: FileStore
    scanners: Sequence[Scanner]
    executor: ThreadPoolExecutor
    max_image_pixels: int = 40_000_000
    max_file_bytes: int = 50 * 1024 * 1024
    allow_text: bool = True

    def __post_init__(self) -> None:
        imaging.configure(self.max_image_pixels)

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def load(self, command: ProcessFile) -> Upload:
        """Locate the upload inside the upload directory and check it is the one described."""
        try:
            path = safe_join(self.upload_dir, command.stored_path)
        except InvalidKey as exc:
            raise FileRefused(f"stored_path refused: {exc}") from None
        return await self._run(read_upload, path, command.size, self.max_file_bytes, command.sha256)

    async def process(self, command: ProcessFile, upload: Upload, file_id: str) -> Processed:
        """Scan, check the type against the allow-list, derive the outputs and store them."""
        sniffed = upload.sniffed
        prefix = store_prefix(command, file_id)
        verdict = await scan_all(self.scanners, upload.data, sniffed)
        if not verdict.clean:
            raise FileRefused(
                verdict.reason or "refused by the scanner", verdict.scanner, sniffed.mime
            )
        if sniffed.kind not in allowed_kinds(command.file_type, allow_text=self.allow_text):
            raise FileRefused(
                f"{sniffed.mime} is not accepted as a {command.file_type.replace('_', ' ')}"
                f" (declared {command.content_type or 'no type'}, "
                f"named {command.original_filename!r})",
                "type",
                sniffed.mime,
            )
        outputs, details = await self._derive(command, upload)
        variants = {name: f"{prefix}/{name}.{ext}" for name, (_, ext) in outputs.items()}
        await self._run(self._put_all, {variants[n]: data for n, (data, _) in outputs.items()})
        return Processed(file_id, sniffed, verdict.scanner, variants, details)

    async def _derive(
        self, command: ProcessFile, upload: Upload
    ) -> tuple[dict[str, tuple[bytes, str]], dict[str, Any]]:
        kind = upload.sniffed.kind
        if kind in IMAGE_KINDS:
            render = (
                imaging.profile_variants
                if command.file_type == PROFILE_PICTURE
                else imaging.attachment_outputs
            )
            try:
                rendered = await self._run(render, upload.data, kind, self.max_image_pixels)
            except imaging.ImageRefused as exc:
                raise FileRefused(str(exc), "pillow", upload.sniffed.mime) from None
            # The side in pixels of each resized variant, so that a caller can ask for "256".
            sizes = (
                imaging.PROFILE_SIZES
                if command.file_type == PROFILE_PICTURE
                else {"preview": imaging.PREVIEW_SIZE}
            )
            details = {
                "width": rendered.width,
                "height": rendered.height,
                "variant_sizes": dict(sizes),
            }
            return rendered.outputs, details
        if kind == PDF:
            try:
                facts = await self._run(pdfs.inspect_pdf, upload.data)
            except pdfs.PdfRefused as exc:
                raise FileRefused(str(exc), "pypdf", upload.sniffed.mime) from None
            return {"original": (upload.data, "pdf")}, {"pages": facts.pages}
        ext = "csv" if command.original_filename.lower().endswith(".csv") else EXTENSION[kind]
        return {"original": (upload.data, ext)}, {}

    def _put_all(self, files: dict[str, bytes]) -> None:
        for key, data in files.items():
            self.store.put(key, data)
