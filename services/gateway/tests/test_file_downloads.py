"""A processed file's variants download through its task: listed in the task's result, chosen by
name or by size, scoped to the task's organization like the task itself."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

from gateway.state import GatewayState
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.testing.fixtures import eventually

from .conftest import Gateway

SIZES = {"large": 512, "medium": 256, "thumbnail": 64}


async def _queue_upload(gateway: Gateway, key: str, file_type: str, **form: str) -> str:
    response = await gateway.client.post(
        "/api/background-tasks/queue-file-processing/",
        files={"file": ("me.jpg", os.urandom(2_000), "image/jpeg")},
        data={"file_type": file_type, **form},
        headers=gateway.auth(key),
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def _processed(
    gateway: Gateway,
    task_id: str,
    organization_id: str,
    outputs: dict[str, tuple[str, bytes]],
    **details: Any,
) -> None:
    """What the file-processor does for the task: store the outputs and report the result."""
    state: GatewayState = gateway.app.state.gateway
    prefix = f"profile_pictures/u-1/{task_id}"
    variants = {}
    for name, (ext, data) in outputs.items():
        variants[name] = f"{prefix}/{name}.{ext}"
        state.files.put(variants[name], data)
    done = TaskLifecycle(
        task_id=uuid.UUID(task_id),
        task_type="file.process",
        status=TaskStatus.SUCCEEDED,
        queue=state.host.topology.queue("file_processing"),
        service="file-processor",
        worker="file-processor:1",
        attempt=1,
        at=datetime.now(UTC),
        result={"file_id": task_id, "variants": variants, "scan": "clean", **details},
    )
    await state.host.publisher.publish(
        Envelope(
            type="task.succeeded",
            payload=done.model_dump(mode="json"),
            task_id=uuid.UUID(task_id),
            organization_id=organization_id,
        )
    )

    async def succeeded() -> bool:
        r = await gateway.client.get(
            f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
        )
        return r.json()["status"] == "SUCCEEDED"

    await eventually(succeeded, message="the file task SUCCEEDED")


async def test_each_variant_of_a_processed_image_is_listed_and_downloads_through_the_task(
    gateway: Gateway,
) -> None:
    mine = await gateway.make_key("operator", "org-a")
    task_id = await _queue_upload(gateway, mine, "profile_picture", user_id="u-1")
    images = {name: ("webp", os.urandom(100 + side)) for name, side in SIZES.items()}
    await _processed(gateway, task_id, "org-a", images, variant_sizes=SIZES)

    status = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", headers=gateway.auth(mine)
    )
    downloads = status.json()["result"]["downloads"]
    assert set(downloads) == set(SIZES)
    for name, url in downloads.items():
        r = await gateway.client.get(url, headers=gateway.auth(mine))
        assert r.status_code == 200, r.text
        assert r.content == images[name][1]
        assert r.headers["content-type"] == "image/webp"

    url = f"/api/background-tasks/{task_id}/download/"
    by_size = await gateway.client.get(url, params={"variant": "256"}, headers=gateway.auth(mine))
    assert by_size.content == images["medium"][1]
    unknown = await gateway.client.get(url, params={"variant": "999"}, headers=gateway.auth(mine))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "medium" in unknown.json()["known"]
    bad = await gateway.client.get(url, params={"variant": "../x"}, headers=gateway.auth(mine))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.variant"

    theirs = await gateway.make_key("operator", "org-b")
    hidden = await gateway.client.get(
        url, params={"variant": "large"}, headers=gateway.auth(theirs)
    )
    assert hidden.status_code == 404
    assert hidden.content != images["large"][1]


async def test_a_stored_attachment_downloads_as_its_original_by_default(gateway: Gateway) -> None:
    mine = await gateway.make_key("operator", "org-a")
    task_id = await _queue_upload(gateway, mine, "deal_attachment", deal_id="d-1")
    pdf = b"%PDF-1.7 " + os.urandom(500)
    await _processed(gateway, task_id, "org-a", {"original": ("pdf", pdf)}, pages=1)
    url = f"/api/background-tasks/{task_id}/download/"
    r = await gateway.client.get(url, headers=gateway.auth(mine))
    assert r.status_code == 200
    assert r.content == pdf
    assert r.headers["content-type"] == "application/pdf"
    named = await gateway.client.get(
        url, params={"variant": "original"}, headers=gateway.auth(mine)
    )
    assert named.content == pdf


async def test_a_task_without_variants_has_no_variant_to_download(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/queue-diagnostic/",
        json={"services": ["gateway"]},
        headers=gateway.auth(),
    )
    task_id = response.json()["tasks"]["gateway"]["task_id"]

    async def succeeded() -> bool:
        r = await gateway.client.get(
            f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
        )
        return r.json()["status"] == "SUCCEEDED"

    await eventually(succeeded, message="diagnostic SUCCEEDED")
    status = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
    )
    assert "downloads" not in status.json()["result"]
    r = await gateway.client.get(
        f"/api/background-tasks/{task_id}/download/",
        params={"variant": "large"},
        headers=gateway.auth(),
    )
    assert r.status_code == 404
