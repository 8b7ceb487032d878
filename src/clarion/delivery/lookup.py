"""How the sender finds the provider for an app and platform.

`ProviderLookup` answers with a `ProviderState`: ready (with the provider and
a concurrency limit), paused (its credential failed; deliveries wait), or
missing (no credential configured). The production lookup builds providers
from the sealed credentials in the store; tests may hand providers in
directly with `StaticProviders`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.platform import Platform
from clarion.providers.base import Provider

DEFAULT_CONCURRENCY = 200


@dataclass(frozen=True, slots=True)
class Ready:
    """A provider to send with; `limit` bounds the coroutines pushing through it at once
    (each consumer of a pooled batch holds one, see `clarion.providers.batch`)."""

    provider: Provider
    limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(DEFAULT_CONCURRENCY))


@dataclass(frozen=True, slots=True)
class Paused:
    reason: str


@dataclass(frozen=True, slots=True)
class Missing:
    pass


ProviderState = Ready | Paused | Missing


class ProviderLookup(Protocol):
    async def get(
        self, app_id: str, platform: Platform, conn: AsyncConnection | None = None
    ) -> ProviderState:
        """The provider's state; `conn` is a transaction to read the credential in, if any."""

    async def auth_failed(self, app_id: str, platform: Platform, reason: str) -> None:
        """Mark the credential failing; `get` answers `Paused` until it changes."""

    async def aclose(self) -> None: ...


class StaticProviders:
    """A fixed map of providers (tests, benchmarks); `auth_failed` pauses in memory."""

    def __init__(self, providers: dict[tuple[str, Platform], Provider]) -> None:
        self._ready = {key: Ready(provider) for key, provider in providers.items()}
        self.paused: dict[tuple[str, Platform], str] = {}

    async def get(
        self, app_id: str, platform: Platform, conn: AsyncConnection | None = None
    ) -> ProviderState:
        key = (app_id, platform)
        if key in self.paused:
            return Paused(self.paused[key])
        return self._ready.get(key) or Missing()

    async def auth_failed(self, app_id: str, platform: Platform, reason: str) -> None:
        self.paused[(app_id, platform)] = reason

    def add(self, app_id: str, platform: Platform, provider: Provider) -> None:
        self._ready[(app_id, platform)] = Ready(provider)

    def resume(self, app_id: str, platform: Platform) -> None:
        self.paused.pop((app_id, platform), None)

    async def aclose(self) -> None:
        return None
