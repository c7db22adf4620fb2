"""Fixtures of the file-processor's tests: real files made here, the pipeline on a thread pool,
the service host against the real broker and a tap on the events it publishes."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject
from sqlalchemy import select

from file_processor.bootstrap import FileProcessorHost, bootstrap
from file_processor.models import KnownOwner
from file_processor.processing import Pipeline
from file_processor.scanning import BuiltinScanner
from file_processor.settings import FileProcessorSettings
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.files import ProcessFile
from prs_shared.messaging.publisher import Publisher
from prs_shared.storage import LocalFileStore
from prs_shared.testing.fixtures import eventually

# --- real files -------------------------------------------------------------------------------

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def jpeg_with_exif(size: tuple[int, int] = (1200, 800), orientation: int = 6) -> bytes:
    """A JPEG whose EXIF says "rotate 90° clockwise" and carries a GPS position."""
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, size[0] // 2, size[1]))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    gps = {1: "N", 2: (52.0, 22.0, 0.0), 3: "E", 4: (4.0, 53.0, 0.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=90)
    return out.getvalue()


def png_with_alpha(size: tuple[int, int] = (300, 200)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste((0, 128, 0, 255), (50, 50, 150, 150))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def palette_gif(size: tuple[int, int] = (120, 90)) -> bytes:
    image = Image.new("P", size, 0)
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    image.paste(1, (10, 10, 60, 60))
    out = io.BytesIO()
    image.save(out, format="GIF", transparency=0)
    return out.getvalue()


def webp_image(size: tuple[int, int] = (400, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(out, format="WEBP")
    return out.getvalue()


def png_bomb(side: int = 20000) -> bytes:
    """A valid, tiny PNG of side x side bilevel pixels, all zero (~25 kB for 400 megapixels)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def pdf_document(pages: int = 2) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for n in range(pages):
        pdf.add_page()
        pdf.cell(text=f"Deal attachment page {n + 1}")
    return bytes(pdf.output())


def pdf_with_javascript() -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(pdf_document(1)))
    writer.root_object[NameObject("/OpenAction")] = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('hello');"),
        }
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(pdf_document(1)))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@dataclass
class Uploads:
    """The upload directory, as the gateway leaves it."""

    root: Path

    def put(
        self,
        data: bytes,
        name: str = "upload.jpg",
        file_type: str = "profile_picture",
        **fields: Any,
    ) -> ProcessFile:
        relative = f"2026/11/{hashlib.sha256(data).hexdigest()[:12]}-{name}"
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        values: dict[str, Any] = {
            "file_type": file_type,
            "stored_path": relative,
            "original_filename": name,
            "content_type": None,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if file_type == "profile_picture":
            values["user_id"] = "u-1"
        else:
            values["deal_id"] = "d-1"
        values.update(fields)
        return ProcessFile(**values)


class Files:
    """Helpers the test modules share (conftest is not importable under importlib mode)."""

    EICAR = EICAR
    jpeg_with_exif = staticmethod(jpeg_with_exif)
    png_with_alpha = staticmethod(png_with_alpha)
    palette_gif = staticmethod(palette_gif)
    webp_image = staticmethod(webp_image)
    png_bomb = staticmethod(png_bomb)
    pdf_document = staticmethod(pdf_document)
    pdf_with_javascript = staticmethod(pdf_with_javascript)
    encrypted_pdf = staticmethod(encrypted_pdf)


@pytest.fixture
def files() -> type[Files]:
    return Files


@pytest.fixture
def uploads(tmp_path: Path) -> Uploads:
    root = tmp_path / "uploads"
    root.mkdir()
    return Uploads(root)


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


@pytest.fixture
def pipeline(uploads: Uploads, store: LocalFileStore) -> Iterator[Pipeline]:
    executor = ThreadPoolExecutor(2)
    yield Pipeline(
        upload_dir=uploads.root,
        store=store,
        scanners=[BuiltinScanner()],
        executor=executor,
        max_image_pixels=40_000_000,
    )
    executor.shutdown()


# --- the service ------------------------------------------------------------------------------


@pytest.fixture
def fp_settings(
    amqp_url: str, namespace: str, tmp_path: Path, uploads: Uploads
) -> Callable[..., FileProcessorSettings]:
    def make(database_url: str | None = None, **overrides: Any) -> FileProcessorSettings:
        values: dict[str, Any] = {
            "amqp_url": amqp_url,
            "namespace": namespace,
            "database_url": database_url
            or f"sqlite+aiosqlite:///{tmp_path / 'file-processor.sqlite3'}",
            "data_dir": tmp_path,
            "upload_dir": uploads.root,
            "retry_base_delay": 0.2,
            "heartbeat_interval": 60,
            "shutdown_grace": 5,
            "metrics_port": 0,
        }
        values.update(overrides)
        return FileProcessorSettings(**values)

    return make


HostRunner = Callable[..., AbstractAsyncContextManager[FileProcessorHost]]


@pytest.fixture
def run_file_processor(fp_settings: Callable[..., FileProcessorSettings]) -> HostRunner:
    @asynccontextmanager
    async def run(
        database_url: str | None = None, **overrides: Any
    ) -> AsyncIterator[FileProcessorHost]:
        host = bootstrap(fp_settings(database_url, **overrides))
        await host.start()
        try:
            yield host
        finally:
            await host.stop()

    return run


Introduce = Callable[..., Awaitable[None]]


@pytest.fixture
def introduce(publisher: Publisher) -> Introduce:
    """``await introduce(host, org, users=[...], deals=[...])``: PRS tells the service who is
    whose, and the call returns once the service has stored it."""

    async def run(
        host: FileProcessorHost,
        organization_id: str,
        *,
        users: Sequence[str] = (),
        deals: Sequence[str] = (),
    ) -> None:
        events = [
            Envelope(
                type=prs.USER_CREATED.type,
                organization_id=organization_id,
                payload=prs.User(
                    user_id=user_id,
                    organization_id=organization_id,
                    email=f"{user_id}@{organization_id}.example",
                    full_name=f"User {user_id}",
                ).model_dump(mode="json"),
            )
            for user_id in users
        ] + [
            Envelope(
                type=prs.DEAL_CREATED.type,
                organization_id=organization_id,
                payload=prs.Deal(
                    deal_id=deal_id,
                    organization_id=organization_id,
                    client_name="Globex",
                    value=Decimal("100.00"),
                    currency="USD",
                    created_at=datetime(2026, 11, 1, tzinfo=UTC),
                ).model_dump(mode="json"),
            )
            for deal_id in deals
        ]
        await publisher.publish_many(events)
        wanted = {("user", u) for u in users} | {("deal", d) for d in deals}

        async def stored() -> bool:
            async with host.sessions() as session:
                rows = await session.execute(select(KnownOwner.kind, KnownOwner.owner_id))
                return wanted <= {(kind, owner) for kind, owner in rows}

        await eventually(stored, message=f"owners {sorted(wanted)} stored")

    return run
