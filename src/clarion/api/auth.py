"""Bearer-key authentication and per-app authorization.

A server or client key belongs to one app: any URL of another app answers
404, exactly as if that app did not exist. Within its app a key may do what
its role allows (403 otherwise). The admin key reaches every app.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request

from clarion.api.errors import Problem, not_found
from clarion.api.services import services_of
from clarion.model.app import App
from clarion.model.keys import Role, hash_key
from clarion.store import apps as app_store


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin, or a key of one app."""

    role: Role
    app_id: str | None
    key_id: str | None


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def principal(request: Request) -> Principal:
    """Who sent the request (401 without a live key).

    A plain function of the request rather than a tree of dependencies: FastAPI
    resolves each dependency anew on every request, a cost the registration
    hot path notices.
    """
    found = services_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorized("send an API key as 'Authorization: Bearer <key>'")
    key = key.strip()
    if hmac.compare_digest(key.encode(), found.settings.admin_key.encode()):
        return Principal(Role.ADMIN, None, None)
    digest = hash_key(key)

    async def lookup() -> Principal | None:
        async with found.database.read() as conn:
            record = await app_store.find_key(conn, digest)
        return Principal(record.role, record.app_id, record.id) if record else None

    known = await found.keys.get_or_load(digest, lookup)
    if known is None:
        raise _unauthorized("the API key is unknown or revoked")
    return known


CurrentPrincipal = Annotated[Principal, Depends(principal)]


async def require_admin(who: CurrentPrincipal) -> Principal:
    if who.role is not Role.ADMIN:
        raise Problem(403, "Forbidden", "this needs the admin key")
    return who


def app_access(*roles: Role, remembered: bool = False) -> Callable[..., Awaitable[App]]:
    """A dependency loading the `{app_id}` of the URL if the caller may act on it.

    `remembered` serves the app from the process's short memory (`Services.apps`),
    for routes that use only what never changes of an app: its id and salt.
    """
    allowed = {Role.ADMIN, *roles}

    async def load(app_id: Annotated[str, Path(max_length=64)], request: Request) -> App:
        who = await principal(request)
        found = services_of(request)
        if who.role is not Role.ADMIN and who.app_id != app_id:
            raise not_found("app")
        if who.role not in allowed:
            raise Problem(403, "Forbidden", f"a {who.role.value} key cannot do this")

        async def lookup() -> App | None:
            async with found.database.read() as conn:
                return await app_store.get_app(conn, app_id)

        app = await (found.apps.get_or_load(app_id, lookup) if remembered else lookup())
        if app is None:
            raise not_found("app")
        return app

    return load


ServerApp = Annotated[App, Depends(app_access(Role.SERVER))]
"""The URL's app, for the admin or the app's server key."""
ClientApp = Annotated[App, Depends(app_access(Role.SERVER, Role.CLIENT, remembered=True))]
"""The URL's app, for any of its keys (the publishable client key included).

Routes taking it use only the app's id and subject salt, so it may be remembered."""
