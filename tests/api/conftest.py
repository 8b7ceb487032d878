"""API tests drive the real ASGI app in-process over httpx, on both store backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import FakeClock
from clarion.config import Settings
from clarion.store.db import Database

ADMIN_KEY = "clr_adm_test-admin-key"
SECRET = "A" * 43


@dataclass
class AppKeys:
    """An app created through the API, with its keys."""

    id: str
    server_key: str
    client_key: str

    def server(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.server_key}"}

    def client(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.client_key}"}


ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


async def no_dns(host: str, port: int) -> list[str]:
    """Tests resolve nothing: no DNS query ever leaves the machine."""
    return []


def make_settings(database: Database, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database.url,
        "admin_key": ADMIN_KEY,
        "secret_key": b"k" * 32,
        "data_dir": tmp_path,
        "body_limit": 64 * 1024,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def api(
    database: Database, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    services = Services(make_settings(database, tmp_path), database, clock, resolver=no_dns)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://clarion.test") as client:
        yield client


async def create_test_app(api: httpx.AsyncClient, name: str = "Shop") -> AppKeys:
    response = await api.post("/v1/apps", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body = response.json()
    return AppKeys(body["id"], body["server_key"], body["client_key"])


@pytest.fixture
async def shop(api: httpx.AsyncClient) -> AppKeys:
    return await create_test_app(api, "Shop")


async def register(api: httpx.AsyncClient, app: AppKeys, body: dict[str, Any]) -> dict[str, Any]:
    """Register a device with the app's client key; returns the device."""
    response = await api.post(f"/v1/apps/{app.id}/devices", json=body, headers=app.client())
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result
