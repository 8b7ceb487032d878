"""The FastAPI application: routers, error handling, limits."""

from __future__ import annotations

from fastapi import FastAPI

from clarion.api.errors import install_error_handlers
from clarion.api.limits import BodyLimitMiddleware
from clarion.api.routes import (
    apps,
    consent_log,
    devices,
    events,
    health,
    notifications,
    providers,
    segments,
    tags,
    users,
    webhooks,
)
from clarion.api.services import Services


def create_app(services: Services) -> FastAPI:
    """An ASGI app serving the v1 API over `services` (store, clock, settings)."""
    api = FastAPI(
        title="Clarion",
        version="1",
        summary="Self-hosted push notifications that respect the recipient",
    )
    api.state.services = services
    install_error_handlers(api)
    routers = (
        health,
        apps,
        tags,
        devices,
        users,
        consent_log,
        notifications,
        events,
        providers,
        webhooks,
    )
    for module in routers:
        api.include_router(module.router)
    api.include_router(segments.router)
    api.include_router(segments.audience_router)
    api.add_middleware(BodyLimitMiddleware, limit=services.settings.body_limit)
    return api
