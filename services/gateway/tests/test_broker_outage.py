"""The broker connection dies while requests arrive: every 202 still ends as a finished task.

A 202 means the task row and its command are committed in the gateway's database; the outbox
relay publishes once the connection is back. Requests keep being accepted during the outage.
"""

from __future__ import annotations

import asyncio

import pytest

from prs_shared.testing.fixtures import close_connections, eventually

from .conftest import Gateway

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def test_every_accepted_task_completes_when_the_broker_connection_drops_mid_traffic(
    gateway: Gateway,
) -> None:
    accepted: list[str] = []
    refused: list[int] = []

    async def send(i: int) -> None:
        response = await gateway.client.post(
            "/api/background-tasks/queue-diagnostic/",
            json={"services": ["gateway"], "note": f"outage-{i}"},
            headers=gateway.auth(),
        )
        if response.status_code == 202:
            accepted.append(response.json()["tasks"]["gateway"]["task_id"])
        else:
            refused.append(response.status_code)

    async def traffic() -> None:
        for batch in range(6):
            await asyncio.gather(*(send(batch * 10 + i) for i in range(10)))
            await asyncio.sleep(0.2)

    async def outage() -> None:
        await asyncio.sleep(0.4)
        host = gateway.app.state.gateway.host
        closed = await asyncio.to_thread(close_connections, host.worker)
        assert closed >= 1

    await asyncio.gather(traffic(), outage())
    # No 5xx: accepting a task needs only the database.
    assert refused == []
    assert len(accepted) == 60

    async def all_succeeded() -> bool:
        statuses = []
        for task_id in accepted:
            r = await gateway.client.get(
                f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
            )
            statuses.append(r.json()["status"])
        return all(s == "SUCCEEDED" for s in statuses)

    await eventually(all_succeeded, timeout=90, interval=1, message="every 202 ends SUCCEEDED")
