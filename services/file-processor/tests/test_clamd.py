"""The ClamAV adapter speaks clamd's INSTREAM protocol (a fake clamd on a unix socket here)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from file_processor.scanning import ClamdScanner, ScannerUnavailable
from file_processor.sniffing import sniff


async def fake_clamd(path: Path, received: list[bytes]) -> asyncio.AbstractServer:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readuntil(b"\x00") == b"zINSTREAM\x00"
        body = b""
        while (size := struct.unpack(">I", await reader.readexactly(4))[0]) != 0:
            body += await reader.readexactly(size)
        received.append(body)
        found = b"EICAR" in body
        writer.write(b"stream: Eicar-Test-Signature FOUND\x00" if found else b"stream: OK\x00")
        await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(serve, str(path))


async def test_clamd_verdicts_clean_and_found(tmp_path, files):
    received: list[bytes] = []
    socket_path = tmp_path / "clamd.sock"
    server = await fake_clamd(socket_path, received)
    scanner = ClamdScanner(f"unix://{socket_path}", timeout=5)
    scanner.chunk = 1000  # several chunks
    try:
        clean_data = files.pdf_document(1)
        clean = await scanner.scan(clean_data, sniff(clean_data))
        dirty = await scanner.scan(files.EICAR, sniff(files.EICAR))
    finally:
        server.close()
        await server.wait_closed()
    assert clean.clean
    assert clean.scanner == "clamav"
    assert not dirty.clean
    assert dirty.reason == "ClamAV: Eicar-Test-Signature"
    assert received == [clean_data, files.EICAR]


async def test_clamd_down_is_transient(tmp_path):
    scanner = ClamdScanner(f"unix://{tmp_path / 'absent.sock'}", timeout=1)
    with pytest.raises(ScannerUnavailable):
        await scanner.scan(b"hello", sniff(b"hello"))
