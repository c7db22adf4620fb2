"""Request bodies are bounded before they are read: 413 as a problem, uploads keep their limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

DEAL_URL = "/api/background-tasks/queue-deal-processing/"
FILE_URL = "/api/background-tasks/queue-file-processing/"
JSON_LIMIT = 4096
UPLOAD_LIMIT = 256 * 1024


@pytest.fixture
def gateway_overrides() -> dict[str, object]:
    return {"max_json_bytes": JSON_LIMIT, "max_upload_bytes": UPLOAD_LIMIT}


class Body:
    """A request body sent in chunks, remembering how many the application asked for."""

    def __init__(self, chunks: int, size: int = 1024) -> None:
        self.chunks = chunks
        self.size = size
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b" " * self.size


def assert_problem_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413
    assert problem["title"] == "Payload too large"


async def test_a_json_body_declared_over_the_limit_is_413_before_any_of_it_is_read(
    gateway: Gateway,
) -> None:
    body = Body(chunks=100_000)  # 100 MB, were it read
    response = await gateway.client.post(
        DEAL_URL,
        content=body,
        headers={
            **gateway.auth(),
            "Content-Type": "application/json",
            "Content-Length": str(100_000 * 1024),
        },
    )
    assert_problem_413(response)
    assert str(JSON_LIMIT) in response.json()["detail"]
    assert body.read == 0


async def test_a_chunked_json_body_is_cut_off_at_the_chunk_that_passes_the_limit(
    gateway: Gateway,
) -> None:
    body = Body(chunks=100_000)  # no Content-Length: httpx sends it chunked
    response = await gateway.client.post(
        DEAL_URL, content=body, headers={**gateway.auth(), "Content-Type": "application/json"}
    )
    assert_problem_413(response)
    assert body.read == JSON_LIMIT // 1024 + 1
    listed = await gateway.client.get("/api/background-tasks/", headers=gateway.auth())
    assert listed.json()["total"] == 0


async def test_a_json_body_under_the_limit_is_still_accepted(gateway: Gateway) -> None:
    body = json.dumps({"deal_id": "d1", "workflow_action": "verify_deal"}) + " " * 3000
    assert len(body) < JSON_LIMIT
    response = await gateway.client.post(
        DEAL_URL, content=body, headers={**gateway.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


async def test_a_multipart_upload_over_the_json_limit_but_within_its_own_is_accepted(
    gateway: Gateway,
) -> None:
    response = await gateway.client.post(
        FILE_URL,
        files={"file": ("a.bin", os.urandom(UPLOAD_LIMIT - 1024), "application/octet-stream")},
        data={"file_type": "deal_attachment"},
        headers=gateway.auth(),
    )
    assert response.status_code == 202, response.text


async def test_a_chunked_upload_over_its_limit_is_413_not_a_malformed_body(
    gateway: Gateway,
) -> None:
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file_type"\r\n\r\n'
        f"deal_attachment\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = Body(chunks=10_000)

    async def multipart() -> AsyncIterator[bytes]:
        yield head
        async for chunk in body:
            yield chunk

    response = await gateway.client.post(
        FILE_URL,
        content=multipart(),
        headers={**gateway.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_problem_413(response)
    assert body.read < 10_000


@contextlib.asynccontextmanager
async def served(gateway: Gateway) -> AsyncIterator[int]:
    """The same application behind a real HTTP server (its lifespan already runs)."""
    config = uvicorn.Config(
        gateway.app, host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def test_the_http_server_answers_413_without_waiting_for_a_declared_100_mb_body(
    gateway: Gateway,
) -> None:
    async with served(gateway) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                f"POST {DEAL_URL} HTTP/1.1\r\nHost: gateway\r\n"
                f"Authorization: Bearer {gateway.admin_key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        # Not one byte of the body is sent: the answer must come from the headers alone.
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
