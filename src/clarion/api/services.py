"""What the routes need, built once at start-up and kept on `app.state`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from clarion.clock import Clock
from clarion.config import Settings
from clarion.delivery.metrics import DeliveryMetrics
from clarion.model.consent import RequestOrigin
from clarion.model.device import TokenPolicy
from clarion.providers.outbound import Resolver, system_resolver
from clarion.store.db import Database


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

    @property
    def token_policy(self) -> TokenPolicy:
        return TokenPolicy(allow_private_endpoints=self.settings.allow_private_endpoints)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def request_origin(request: Request) -> RequestOrigin:
    """Where a request came from, for the consent ledger."""
    return RequestOrigin(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
