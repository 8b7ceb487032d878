"""What the routes need, built once at start-up and kept on `app.state`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from clarion.api.lookups import TtlCache
from clarion.clock import Clock
from clarion.config import Settings
from clarion.delivery.metrics import DeliveryMetrics
from clarion.model.app import App
from clarion.model.consent import RequestOrigin
from clarion.model.device import TokenPolicy
from clarion.providers.outbound import Resolver, system_resolver
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommit
from clarion.store.registration import RegistrationWrite, Upserted, upsert_devices

if TYPE_CHECKING:
    from clarion.api.auth import Principal


POSTGRES_BATCHES_IN_FLIGHT = 4
"""Registration batches written at once on PostgreSQL (each waits mostly on the server)."""


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    database: Database
    clock: Clock
    on_enqueue: Callable[[], None] = field(default=lambda: None)
    """Called after the API queued work, so an in-process worker starts at once."""
    metrics: DeliveryMetrics = field(default_factory=DeliveryMetrics)
    """This process's metrics (shared with its in-process worker)."""
    resolver: Resolver = system_resolver
    """DNS for registration-time endpoint checks (tests inject a fake: no query leaves)."""
    keys: TtlCache[Principal] = field(init=False)
    """Who each recently seen key is (by its hash), for `settings.auth_cache_ttl`."""
    apps: TtlCache[App] = field(init=False)
    """Recently loaded apps, for the routes that use only their id and salt."""
    registrations: GroupCommit[RegistrationWrite, Upserted] = field(init=False)
    """Device registrations arriving together are written in one transaction."""

    def __post_init__(self) -> None:
        ttl = self.settings.auth_cache_ttl
        object.__setattr__(self, "keys", TtlCache(self.clock.monotonic, ttl))
        object.__setattr__(self, "apps", TtlCache(self.clock.monotonic, ttl))
        writers = 1 if self.database.is_sqlite else POSTGRES_BATCHES_IN_FLIGHT
        batches = GroupCommit(self.database, upsert_devices, key=_device_key, concurrency=writers)
        object.__setattr__(self, "registrations", batches)

    @property
    def token_policy(self) -> TokenPolicy:
        return TokenPolicy(allow_private_endpoints=self.settings.allow_private_endpoints)


def _device_key(write: RegistrationWrite) -> tuple[str, str, str]:
    return write.key


def services_of(request: Request) -> Services:
    """The process's services, for code that has the request at hand."""
    found: Services = request.app.state.services
    return found


async def services(request: Request) -> Services:
    """The process's services as a dependency (async: FastAPI runs a plain function
    dependency in a worker thread)."""
    return services_of(request)


def request_origin(request: Request) -> RequestOrigin:
    """Where a request came from, for the consent ledger."""
    return RequestOrigin(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
