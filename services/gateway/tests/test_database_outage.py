"""The gateway's database goes away and comes back: meanwhile a request is answered 503 with
Retry-After (the client may try again; nothing was queued), never a 500, and afterwards the
gateway serves and queues again without a restart."""

from __future__ import annotations

import pytest

from prs_shared.testing.fixtures import PgDatabases, eventually, proxied
from prs_shared.testing.tcp_proxy import TcpProxy

from .conftest import Gateway

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def database_url(pg_databases: PgDatabases, pg_proxy: TcpProxy) -> str:
    """The gateway's database, reached through the proxy."""
    return proxied(await pg_databases.create(), pg_proxy)


async def _queue(gateway: Gateway, deal: str) -> tuple[int, dict[str, object], dict[str, str]]:
    response = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/",
        json={"deal_id": deal, "workflow_action": "verify_deal"},
        headers=gateway.auth(),
    )
    return response.status_code, response.json(), dict(response.headers)


async def test_requests_are_refused_with_503_while_the_database_is_away_and_served_after(
    gateway: Gateway, pg_proxy: TcpProxy
) -> None:
    code, before, _ = await _queue(gateway, "deal-before")
    assert code == 202, before
    status_path = f"/api/background-tasks/{before['task_id']}/status/"

    await pg_proxy.cut()
    answers = []
    for path in (status_path, "/api/background-tasks/", "/readyz"):
        response = await gateway.client.get(path, headers=gateway.auth())
        answers.append((path, response.status_code, response.text))
        assert response.status_code == 503, answers
        if path == "/readyz":
            assert response.json()["checks"]["database"].startswith("error"), answers
        else:
            assert response.headers.get("retry-after"), answers
            assert response.json()["title"] == "Database unavailable", answers
    code, refused, headers = await _queue(gateway, "deal-during")
    assert code == 503, refused
    assert headers.get("retry-after"), headers
    assert refused["title"] in ("Database unavailable", "Not queued"), refused

    await pg_proxy.restore()

    async def served() -> bool:
        response = await gateway.client.get(status_path, headers=gateway.auth())
        return response.status_code == 200

    await eventually(served, timeout=30)
    code, after, _ = await _queue(gateway, "deal-after")
    assert code == 202, after
    listed = await gateway.client.get(
        "/api/background-tasks/", params={"limit": 50}, headers=gateway.auth()
    )
    assert listed.status_code == 200, listed.text
    ids = {task["task_id"] for task in listed.json()["items"]}
    assert {before["task_id"], after["task_id"]} <= ids, ids
