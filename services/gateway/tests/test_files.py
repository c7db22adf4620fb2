"""queue-file-processing: multipart uploads with a size limit, and the JSON form's path checks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from prs_shared.messaging.envelope import Envelope
from prs_shared.testing.fixtures import BrokerProbe, eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

URL = "/api/background-tasks/queue-file-processing/"


@pytest.fixture
def gateway_overrides() -> dict[str, object]:
    return {"max_upload_bytes": 64 * 1024}


async def test_a_multipart_upload_is_stored_and_queued_with_its_hash(
    gateway: Gateway, broker: BrokerProbe
) -> None:
    data = os.urandom(10_000)
    response = await gateway.client.post(
        URL,
        files={"file": ("../../evil name.jpg", data, "image/jpeg")},
        data={"file_type": "profile_picture", "priority": "high", "user_id": "7"},
        headers=gateway.auth(),
    )
    assert response.status_code == 202, response.text
    messages = await eventually(
        lambda: broker.get_all(gateway.settings.namespace + "file_processing"),
        message="file command queued",
    )
    command = Envelope.model_validate_json(messages[0].body).payload
    assert command["sha256"] == hashlib.sha256(data).hexdigest()
    assert command["size"] == len(data)
    stored = gateway.settings.resolved_upload_dir() / command["stored_path"]
    assert stored.read_bytes() == data
    assert stored.name == "evil_name.jpg"  # the client's path is not used as a path


async def test_an_upload_over_the_limit_is_413_and_nothing_is_queued(gateway: Gateway) -> None:
    response = await gateway.client.post(
        URL,
        files={"file": ("big.bin", os.urandom(200 * 1024), "application/octet-stream")},
        data={"file_type": "deal_attachment"},
        headers=gateway.auth(),
    )
    assert response.status_code == 413
    listed = await gateway.client.get("/api/background-tasks/", headers=gateway.auth())
    assert listed.json()["total"] == 0


async def test_a_missing_file_type_is_422_naming_it(gateway: Gateway) -> None:
    response = await gateway.client.post(
        URL, files={"file": ("a.jpg", b"x", "image/jpeg")}, headers=gateway.auth()
    )
    assert response.status_code == 422
    assert "file_type" in response.json()["detail"]


async def test_the_json_form_accepts_a_file_inside_the_upload_directory(gateway: Gateway) -> None:
    upload_dir = gateway.settings.resolved_upload_dir()
    (upload_dir / "incoming").mkdir(parents=True)
    (upload_dir / "incoming" / "upload.jpg").write_bytes(b"jpeg bytes")
    for path in ["incoming/upload.jpg", str(upload_dir / "incoming" / "upload.jpg")]:
        response = await gateway.client.post(
            URL,
            json={
                "file_type": "profile_picture",
                "file_path": path,
                "original_filename": "profile.jpg",
                "priority": "medium",
            },
            headers=gateway.auth(),
        )
        assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "file_path",
    [
        "../secret.txt",
        "incoming/../../secret.txt",
        "/etc/passwd",
        "..%2fsecret.txt",
        "%2e%2e/secret.txt",
        "link-out/secret.txt",
        "escape.txt",
        "incoming",
        "nope.jpg",
    ],
)
async def test_paths_outside_the_upload_directory_are_400_and_nothing_is_queued(
    gateway: Gateway, tmp_path: Path, file_path: str
) -> None:
    upload_dir = gateway.settings.resolved_upload_dir()
    (upload_dir / "incoming").mkdir(parents=True)
    outside = upload_dir.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (upload_dir.parent / "secret.txt").write_text("secret")
    (upload_dir / "link-out").symlink_to(outside)
    (upload_dir / "escape.txt").symlink_to(outside / "secret.txt")
    response = await gateway.client.post(
        URL,
        json={"file_type": "deal_attachment", "file_path": file_path, "original_filename": "x.pdf"},
        headers=gateway.auth(),
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "file_path"
    listed = await gateway.client.get("/api/background-tasks/", headers=gateway.auth())
    assert listed.json()["total"] == 0


async def test_another_content_type_is_415(gateway: Gateway) -> None:
    response = await gateway.client.post(
        URL, content=b"x", headers={**gateway.auth(), "content-type": "text/plain"}
    )
    assert response.status_code == 415
