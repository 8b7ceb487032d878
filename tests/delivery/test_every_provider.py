"""One notification through the HTTP API to a device on each of the six services.

Credentials are PUT through the API, sealed in the store and opened by the
production provider lookup; pushes go over real sockets (pycurl) to the
emulators, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import SystemClock
from clarion.delivery.runtime import Runtime, build_runtime
from clarion.emulate import RunningEmulators, running_emulators
from clarion.store.db import Database
from tests.api.conftest import AppKeys, create_test_app, make_settings, no_dns

GRANTED = {"status": "granted", "source": "os_prompt"}


@pytest.fixture
async def world(
    database: Database, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, AppKeys, RunningEmulators, Runtime]]:
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
            app = await create_test_app(api)
            for provider, body in emulators.credentials.items():
                answer = await api.put(
                    f"/v1/apps/{app.id}/providers/{provider}", json=body, headers=app.server()
                )
                assert answer.status_code == 200, answer.text
            yield api, app, emulators, runtime
        await runtime.aclose()


def _devices(emulators: RunningEmulators) -> dict[str, object]:
    subscription = emulators.webpush.subscribe()
    return {
        "apns": secrets.token_hex(32),
        "fcm": "fcm-" + secrets.token_urlsafe(40),
        "hms": "hms-" + secrets.token_hex(20),
        "adm": "amzn1.adm-registration.v3." + secrets.token_urlsafe(30),
        "wns": f"{emulators.wns.url}/?token={secrets.token_urlsafe(12)}",
        "webpush": dataclasses.asdict(subscription)
        | {"keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}},
    }


async def test_one_notification_reaches_all_six_services(
    world: tuple[httpx.AsyncClient, AppKeys, RunningEmulators, Runtime],
) -> None:
    api, app, emulators, runtime = world
    for platform, token in _devices(emulators).items():
        if isinstance(token, dict):
            token = {"endpoint": token["endpoint"], "keys": token["keys"]}
        answer = await api.post(
            f"/v1/apps/{app.id}/devices",
            json={"platform": platform, "token": token, "user_id": "u-1", "consent": GRANTED},
            headers=app.client(),
        )
        assert answer.status_code == 201, answer.text
    accepted = await api.post(
        f"/v1/apps/{app.id}/notifications",
        json={
            "audience": {"users": ["u-1"]},
            "content": {
                "title": "Order shipped",
                "body": "Arrives Thursday",
                "badge": 1,
                "data": {"order_id": "1234"},
            },
            "collapse_key": "order-1234",
        },
        headers=app.server(),
    )
    assert accepted.status_code == 202
    await runtime.worker.run_until_idle()
    status = (
        await api.get(
            f"/v1/apps/{app.id}/notifications/{accepted.json()['id']}", headers=app.server()
        )
    ).json()
    deliveries = (
        await api.get(
            f"/v1/apps/{app.id}/notifications/{accepted.json()['id']}/deliveries",
            headers=app.server(),
        )
    ).json()["items"]
    assert {d["platform"]: d["status"] for d in deliveries} == {
        p: "sent" for p in ("apns", "fcm", "hms", "adm", "wns", "webpush")
    }, deliveries
    assert status["status"] == "completed"
    for name in ("apns", "fcm", "hms", "adm", "wns", "webpush"):
        received = getattr(emulators, name).state.requests
        assert [r.status for r in received] in ([200], [201]), (name, received)
