"""A refused credential pauses its provider; replacing it resumes without a restart."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import SystemClock
from clarion.delivery.runtime import Runtime, build_runtime
from clarion.emulate import RunningEmulators, running_emulators
from clarion.store.db import Database
from clarion.store.schema_pipeline import jobs
from tests.api.conftest import AppKeys, create_test_app, make_settings, no_dns

GRANTED = {"status": "granted", "source": "os_prompt"}
World = tuple[httpx.AsyncClient, AppKeys, RunningEmulators, Runtime]


@pytest.fixture
async def world(database: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with running_emulators(tmp_path / "emulators") as emulators:
        settings = make_settings(
            database, tmp_path, allow_private_endpoints=True, ca_file=emulators.ca_file
        )
        clock = SystemClock()
        runtime = build_runtime(database, settings, clock)
        services = Services(
            settings, database, clock, on_enqueue=runtime.worker.wake, resolver=no_dns
        )
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://clarion.test") as api:
            yield api, await create_test_app(api), emulators, runtime
        await runtime.aclose()


def _unknown_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def _status(api: httpx.AsyncClient, app: AppKeys, notification_id: str) -> dict[str, object]:
    answer = await api.get(
        f"/v1/apps/{app.id}/notifications/{notification_id}", headers=app.server()
    )
    result: dict[str, object] = answer.json()
    return result


async def test_refused_credential_pauses_and_a_new_one_resumes(world: World) -> None:
    api, app, emulators, runtime = world
    good = emulators.credentials["apns"]
    bad = {**good, "private_key": _unknown_key()}
    put = await api.put(f"/v1/apps/{app.id}/providers/apns", json=bad, headers=app.server())
    assert put.status_code == 200
    await api.post(
        f"/v1/apps/{app.id}/devices",
        json={
            "platform": "apns",
            "token": secrets.token_hex(32),
            "user_id": "u-1",
            "consent": GRANTED,
        },
        headers=app.client(),
    )
    accepted = await api.post(
        f"/v1/apps/{app.id}/notifications",
        json={"audience": {"users": ["u-1"]}, "content": {"title": "x"}},
        headers=app.server(),
    )
    notification_id = accepted.json()["id"]
    await runtime.worker.run_until_idle()
    stats = (await _status(api, app, notification_id))["stats"]
    assert stats == {**stats, "queued": 1, "sent": 0, "failed": {}}
    state = (await api.get(f"/v1/apps/{app.id}/providers/apns", headers=app.server())).json()
    assert state["status"] == "failing"
    assert "InvalidProviderToken" in state["last_error"]
    assert bad["private_key"] not in str(state)

    fixed = await api.put(f"/v1/apps/{app.id}/providers/apns", json=good, headers=app.server())
    assert fixed.status_code == 200
    async with runtime.worker.database.write() as conn:  # the paused batch is due again now
        await conn.execute(jobs.update().values(due_at=SystemClock().now() - timedelta(seconds=1)))
    await runtime.worker.run_until_idle()
    status = await _status(api, app, notification_id)
    assert status["status"] == "completed"
    assert status["stats"]["sent"] == 1  # type: ignore[index]
