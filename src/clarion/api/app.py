"""The FastAPI application: routers, error handling, limits."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from clarion.api.errors import install_error_handlers
from clarion.api.limits import BodyLimitMiddleware
from clarion.api.routes import (
    apps,
    consent_log,
    devices,
    events,
    health,
    notifications,
    preference_links,
    providers,
    segments,
    tags,
    users,
    webhooks,
)
from clarion.api.services import Services
from clarion.web import STATIC_DIR, STATIC_PREFIX, dashboard, sdk
from clarion.web import preferences as preference_center


def create_app(services: Services) -> FastAPI:
    """An ASGI app serving the v1 API over `services` (store, clock, settings)."""
    api = FastAPI(
        title="Clarion",
        version="1",
        summary="Self-hosted push notifications that respect the recipient",
    )
    api.state.services = services
    install_error_handlers(api)
    # The router tries routes in order: registration, the hot path, comes first
    # (no route before it matches its URLs; `POST .../devices/tags` still does).
    routers = (
        devices,
        health,
        apps,
        tags,
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
    api.include_router(preference_links.router)
    api.include_router(preference_center.router)
    api.include_router(sdk.router)
    dashboard.install(api)
    api.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    api.add_middleware(BodyLimitMiddleware, limit=services.settings.body_limit)
    api.add_middleware(sdk.ApiCors)
    return api
