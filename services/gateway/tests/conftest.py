"""A gateway running in-process (lifespan included) against the real broker and database."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings


@dataclass
class Gateway:
    client: httpx.AsyncClient
    admin_key: str
    settings: GatewaySettings
    app: FastAPI

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    async def make_key(self, role: str, organization_id: str | None = None) -> str:
        response = await self.client.post(
            "/api/keys/",
            json={
                "name": f"{role} of {organization_id}",
                "role": role,
                "organization_id": organization_id,
            },
            headers=self.auth(),
        )
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key


@pytest.fixture
def gateway_overrides() -> dict[str, object]:
    """Settings a test module may override (e.g. a tiny rate limit)."""
    return {}


@pytest.fixture
async def gateway(
    amqp_url: str,
    namespace: str,
    database_url: str,
    tmp_path: Path,
    gateway_overrides: dict[str, object],
) -> AsyncIterator[Gateway]:
    key = secrets.token_urlsafe(24)
    values: dict[str, object] = {
        "amqp_url": amqp_url,
        "namespace": namespace,
        "database_url": database_url,
        "admin_api_key": key,
        "heartbeat_interval": 0.5,
        "metrics_port": 0,
        "data_dir": tmp_path / "data",
        "upload_dir": tmp_path / "uploads",
    }
    values.update(gateway_overrides)
    settings = GatewaySettings(**values)  # type: ignore[arg-type]
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(client, key, settings, app)
