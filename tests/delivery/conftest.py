"""The pipeline end to end: the real API, the real worker, emulators over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import FakeClock
from clarion.delivery.lookup import StaticProviders
from clarion.delivery.worker import Worker
from clarion.emulators.apns import ApnsEmulator
from clarion.emulators.webpush import WebPushEmulator
from clarion.model.platform import Platform
from clarion.providers.apns import ApnsProvider
from clarion.providers.apns_auth import ApnsTokenCredentials
from clarion.providers.base import Transport
from clarion.providers.curl_transport import CurlTransport
from clarion.providers.httpx_transport import HttpxTransport
from clarion.providers.vapid import generate_vapid_keys
from clarion.providers.webpush import WebPushCredentials, WebPushProvider
from clarion.store.db import Database
from tests.api.conftest import AppKeys, create_test_app, make_settings, no_dns


@dataclass
class Pipeline:
    api: httpx.AsyncClient
    app: AppKeys
    worker: Worker
    providers: StaticProviders
    webpush: WebPushEmulator
    apns: ApnsEmulator
    clock: FakeClock
    database: Database

    async def register(self, body: dict[str, Any]) -> str:
        response = await self.api.post(
            f"/v1/apps/{self.app.id}/devices", json=body, headers=self.app.client()
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["id"])

    async def register_webpush(self, **fields: Any) -> tuple[str, Any]:
        subscription = self.webpush.subscribe()
        token = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        body = {"platform": "webpush", "token": token, **fields}
        response = await self.api.post(
            f"/v1/apps/{self.app.id}/devices", json=body, headers=self.app.client()
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"]), subscription

    async def send(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.api.post(
            f"/v1/apps/{self.app.id}/notifications",
            json=body,
            headers={**self.app.server(), **headers},
        )

    async def status(self, notification_id: str) -> dict[str, Any]:
        response = await self.api.get(
            f"/v1/apps/{self.app.id}/notifications/{notification_id}", headers=self.app.server()
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def deliveries(self, notification_id: str, **params: Any) -> list[dict[str, Any]]:
        response = await self.api.get(
            f"/v1/apps/{self.app.id}/notifications/{notification_id}/deliveries",
            params={"limit": 500, **params},
            headers=self.app.server(),
        )
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@asynccontextmanager
async def _build_pipeline(
    database: Database, tmp_path: Path, clock: FakeClock, *, fast_apns: bool
) -> AsyncIterator[Pipeline]:
    """API + worker + Web Push and APNs emulators; `fast_apns` picks pycurl and raw h2."""
    settings = make_settings(database, tmp_path, allow_private_endpoints=True)
    async with (
        WebPushEmulator(clock=clock) as webpush,
        ApnsEmulator(clock=clock, raw_h2=fast_apns) as apns,
    ):
        transport = HttpxTransport(ca_file=webpush.ca_file)
        apns_transport: Transport = (
            CurlTransport(ca_file=apns.ca_file)
            if fast_apns
            else HttpxTransport(ca_file=apns.ca_file)
        )
        providers = StaticProviders({})
        worker = Worker(database, providers, clock, poll_interval=0.01)
        services = Services(
            settings,
            database,
            clock,
            on_enqueue=worker.wake,
            metrics=worker.metrics,
            resolver=no_dns,
        )
        asgi = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=asgi, base_url="http://clarion.test") as api:
            app = await create_test_app(api)
            keys = generate_vapid_keys()
            providers.add(
                app.id,
                Platform.WEBPUSH,
                WebPushProvider(
                    WebPushCredentials(keys.private_pem, "mailto:ops@example.com"),
                    transport,
                    clock=clock,
                ),
            )
            apns_credentials = ApnsTokenCredentials(
                key_id="KEY0000001",
                team_id="TEAM000001",
                private_key=apns.new_signing_key(),
                bundle_id="com.example.app",
            )
            providers.add(
                app.id,
                Platform.APNS,
                ApnsProvider(apns_credentials, apns_transport, clock=clock, endpoint=apns.url),
            )
            yield Pipeline(api, app, worker, providers, webpush, apns, clock, database)
        await transport.aclose()
        await apns_transport.aclose()


@pytest.fixture
async def pipeline(database: Database, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Pipeline]:
    async with _build_pipeline(database, tmp_path, clock, fast_apns=False) as built:
        yield built


@pytest.fixture
async def apns_pipeline(
    database: Database, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Pipeline]:
    """`pipeline` tuned for volume: APNs over pycurl to the raw HTTP/2 emulator.

    Hypercorn's HTTP/2 stream scheduling and httpx cost several times the CPU
    of libcurl and the emulator's raw h2 server per push; a simulation of
    tens of thousands of pushes in one process needs the lighter pair. Web
    Push stays as in `pipeline`.
    """
    async with _build_pipeline(database, tmp_path, clock, fast_apns=True) as built:
        yield built
