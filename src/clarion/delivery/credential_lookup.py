"""Providers built from the app's sealed credentials, rebuilt when they change.

Before each batch the lookup reads the credential (one primary-key lookup,
in the sender's own read transaction):
a new revision builds a new provider (the old one's transport is closed after
a grace period, so its in-flight pushes finish); a deleted credential closes
it; a `failing` credential answers `Paused`, so deliveries wait instead of
failing one by one until someone fixes it (a new PUT resets it to `ok`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.clock import Clock
from clarion.config import Settings
from clarion.delivery.lookup import Missing, Paused, ProviderState, Ready
from clarion.model.platform import Platform
from clarion.providers.base import InvalidCredentials, Provider
from clarion.providers.outbound import OutboundPolicy
from clarion.providers.registry import TransportFactory, build_provider, curl_transport_factory
from clarion.store import credentials as store
from clarion.store import webhooks
from clarion.store.db import Database
from clarion.store.sealing import Sealer, SealError

log = logging.getLogger("clarion.providers")

CLOSE_GRACE = 30.0


@dataclass(frozen=True, slots=True)
class _Built:
    revision: str
    ready: Ready


class CredentialProviders:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Clock,
        *,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.sealer = Sealer(settings.secret_key)
        self.policy = OutboundPolicy(allow_private=settings.allow_private_endpoints)
        self.factory = transport_factory or curl_transport_factory(settings.ca_file)
        self._built: dict[tuple[str, Platform], _Built] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def get(
        self, app_id: str, platform: Platform, conn: AsyncConnection | None = None
    ) -> ProviderState:
        key = (app_id, platform)
        if conn is not None:
            stored = await store.get_credential(conn, app_id, platform.value)
        else:
            async with self.database.read() as own:
                stored = await store.get_credential(own, app_id, platform.value)
        if stored is None:
            self._retire(key)
            return Missing()
        if stored.status == store.STATUS_FAILING:
            return Paused(stored.last_error or "credential failing")
        built = self._built.get(key)
        if built is not None and built.revision == stored.revision:
            return built.ready
        async with self._lock:
            built = self._built.get(key)
            if built is not None and built.revision == stored.revision:
                return built.ready
            try:
                config = self.sealer.open_json(
                    stored.sealed, app_id=app_id, provider=platform.value
                )
                provider = build_provider(
                    platform,
                    config,
                    transport_factory=self.factory,
                    clock=self.clock,
                    policy=self.policy,
                )
            except (InvalidCredentials, SealError, KeyError, ValueError) as exc:
                reason = f"credential unusable: {type(exc).__name__}"
                await self.auth_failed(app_id, platform, reason)
                return Paused(reason)
            self._retire(key)
            self._built[key] = _Built(stored.revision, Ready(provider))
            return self._built[key].ready

    async def auth_failed(self, app_id: str, platform: Platform, reason: str) -> None:
        now = self.clock.now()
        async with self.database.write() as conn:
            await store.record_failure(conn, app_id, platform.value, reason, now)
            event = webhooks.Event(
                webhooks.EventType.CREDENTIAL_FAILING,
                {"provider": platform.value, "reason": reason},
            )
            await webhooks.emit(conn, app_id, [event], now)
        log.warning("credential of %s for app %s is failing: %s", platform.value, app_id, reason)

    def _retire(self, key: tuple[str, Platform]) -> None:
        built = self._built.pop(key, None)
        if built is not None:
            task = asyncio.create_task(_close_later(built.ready.provider, CLOSE_GRACE))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for built in self._built.values():
            await built.ready.provider.transport.aclose()
        self._built.clear()
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)


async def _close_later(provider: Provider, delay: float) -> None:
    try:
        await asyncio.sleep(delay)
    finally:
        await provider.transport.aclose()
