"""Idempotency-Key: the same queuing request sent twice is one task; a reused key is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from gateway.models import IdempotencyKey, Task
from gateway.state import GatewayState
from prs_shared.messaging.envelope import utcnow

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

DEAL = "/api/background-tasks/queue-deal-processing/"
BODY = {"deal_id": "deal-7", "workflow_action": "verify_deal"}


def _state(gateway: Gateway) -> GatewayState:
    state: GatewayState = gateway.app.state.gateway
    return state


async def _task_count(gateway: Gateway) -> int:
    async with _state(gateway).host.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Task))).scalar_one())


async def _post(
    gateway: Gateway, key: str, body: Mapping[str, object], api_key: str | None = None
) -> httpx.Response:
    return await gateway.client.post(
        DEAL, json=body, headers={**gateway.auth(api_key), "Idempotency-Key": key}
    )


async def test_the_same_key_and_body_return_the_first_task(gateway: Gateway) -> None:
    first = await _post(gateway, "deal-7-verify", BODY)
    again = await _post(gateway, "deal-7-verify", BODY)
    assert first.status_code == again.status_code == 202
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.json()["status_url"] == first.json()["status_url"]
    assert await _task_count(gateway) == 1


async def test_the_same_key_with_a_different_body_is_422_naming_the_header(
    gateway: Gateway,
) -> None:
    assert (await _post(gateway, "k-1", BODY)).status_code == 202
    other = await _post(gateway, "k-1", {**BODY, "workflow_action": "generate_invoice"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in other.json()["errors"]] == ["Idempotency-Key"]
    assert await _task_count(gateway) == 1


async def test_without_a_key_every_request_is_a_new_task(gateway: Gateway) -> None:
    for _ in range(2):
        response = await gateway.client.post(DEAL, json=BODY, headers=gateway.auth())
        assert response.status_code == 202
    assert await _task_count(gateway) == 2


async def test_two_identical_requests_at_once_give_one_task(gateway: Gateway) -> None:
    responses = await asyncio.gather(*(_post(gateway, "race", BODY) for _ in range(8)))
    assert {r.status_code for r in responses} == {202}, [r.text for r in responses]
    assert len({r.json()["task_id"] for r in responses}) == 1
    assert await _task_count(gateway) == 1


async def test_keys_are_the_api_keys_own(gateway: Gateway) -> None:
    """Another key sending the same Idempotency-Key gets its own task, never someone else's."""
    acme = await gateway.make_key("operator", "org-acme")
    globex = await gateway.make_key("operator", "org-globex")
    mine = await _post(gateway, "shared-key", BODY, acme)
    theirs = await _post(gateway, "shared-key", BODY, globex)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["task_id"] != theirs.json()["task_id"]


async def test_a_key_past_its_24_hours_makes_a_new_task(gateway: Gateway) -> None:
    first = await _post(gateway, "old", BODY)
    async with _state(gateway).host.sessions() as session, session.begin():
        await session.execute(
            update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25))
        )
    again = await _post(gateway, "old", BODY)
    assert again.status_code == 202
    assert again.json()["task_id"] != first.json()["task_id"]
    assert (await _post(gateway, "old", BODY)).json()["task_id"] == again.json()["task_id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "naïve"])
async def test_a_malformed_key_is_422_naming_the_header(gateway: Gateway, key: str) -> None:
    response = await gateway.client.post(
        DEAL,
        json=BODY,
        headers={**gateway.auth(), "Idempotency-Key": key.encode()},  # type: ignore[dict-item],
    )
    assert response.status_code == 422, response.text
    assert any("Idempotency-Key" in e["field"] for e in response.json()["errors"])
    assert await _task_count(gateway) == 0


async def test_a_repeated_upload_is_one_task_and_one_stored_file(gateway: Gateway) -> None:
    upload_dir = gateway.settings.resolved_upload_dir()

    async def upload(content: bytes) -> dict[str, object]:
        response = await gateway.client.post(
            "/api/background-tasks/queue-file-processing/",
            files={"file": ("contract.pdf", content, "application/pdf")},
            data={"file_type": "deal_attachment"},
            headers={**gateway.auth(), "Idempotency-Key": "upload-1"},
        )
        assert response.status_code in (202, 422), response.text
        return {**response.json(), "http": response.status_code}

    first = await upload(b"%PDF-1.4 same bytes")
    again = await upload(b"%PDF-1.4 same bytes")
    assert first["http"] == again["http"] == 202
    assert again["task_id"] == first["task_id"]
    assert len([p for p in upload_dir.rglob("*") if p.is_file()]) == 1
    different = await upload(b"%PDF-1.4 other bytes")
    assert different["http"] == 422
    assert len([p for p in upload_dir.rglob("*") if p.is_file()]) == 1
