"""The dashboard at `/`: server-rendered pages for an app's publisher.

`router` holds every dashboard route; `install(api)` adds it and its
exception answers to the FastAPI app. Every route except the
sign-in form needs a signed-in session (see `access`); the test suite walks
`router.routes` to check that no page is reachable without one.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from clarion.web.dashboard import (
    compose,
    devices,
    keys,
    notifications,
    overview,
    segments,
    settings,
    signin,
)
from clarion.web.dashboard.access import install_handlers

PUBLIC_PATHS = frozenset({"/sign-in"})
"""The only dashboard paths answered without a session."""

PAGES = (signin, overview, devices, compose, notifications, segments, settings, keys)
"""The modules whose routers make up the dashboard (no prefixes: paths are as written)."""

router = APIRouter(include_in_schema=False)
for _module in PAGES:
    router.include_router(_module.router)


def routes() -> list[APIRoute]:
    """Every dashboard route, for checks that must cover all of them (sign-in required)."""
    return [
        route for module in PAGES for route in module.router.routes if isinstance(route, APIRoute)
    ]


def install(api: FastAPI) -> None:
    """Serve the dashboard from `api`: its routes and its exception answers.

    Its CSS and script are under `clarion.web.STATIC_DIR`, which the app mounts.
    """
    install_handlers(api)
    api.include_router(router)


__all__ = ["PAGES", "PUBLIC_PATHS", "install", "router", "routes"]
