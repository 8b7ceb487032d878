"""Who is looking at the dashboard, and what they may see.

Every dashboard route but the sign-in form depends on `viewer` (through
`DashApp` for app pages): no session, an expired one, or one whose key was
revoked since raises `SignInRequired`, which answers a redirect to the
sign-in form for a page and 401 for a script's request. Every POST also
depends on `checked_form` or `checked_header`: the CSRF token of the session
must come back in the form (`csrf`) or in the `X-CSRF-Token` header (fetch).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from clarion.api.services import Services, services
from clarion.model.app import App
from clarion.model.keys import Role, hash_key
from clarion.store import apps as app_store
from clarion.web.dashboard.session import COOKIE, SessionSealer, SessionState, same_token

Found = Annotated[Services, Depends(services)]


class SignInRequired(Exception):
    """No valid session: a page redirects to the sign-in form, a script gets 401."""


class CsrfRejected(Exception):
    """A POST without the session's CSRF token: 403."""


class NotVisible(Exception):
    """The app (or a thing in it) does not exist for this viewer: 404."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in person: the admin (every app) or the holder of one app's server key."""

    role: Role
    app_id: str | None
    state: SessionState

    @property
    def csrf(self) -> str:
        return self.state.csrf

    def may_see(self, app_id: str) -> bool:
        return self.role is Role.ADMIN or self.app_id == app_id


def sealer(found: Services) -> SessionSealer:
    return SessionSealer(found.settings.secret_key)


def session_state(request: Request, found: Services) -> SessionState | None:
    return sealer(found).open(request.cookies.get(COOKIE))


async def key_role(found: Services, key_hash: str) -> tuple[Role, str | None] | None:
    """The role and app of a live key with this hash; None when unknown, revoked or a client key."""
    admin_hash = hash_key(found.settings.admin_key)
    if found.settings.admin_key and hmac.compare_digest(admin_hash, key_hash):
        return Role.ADMIN, None
    async with found.database.read() as conn:
        record = await app_store.find_key(conn, key_hash)
    if record is None or record.role is not Role.SERVER:
        return None
    return record.role, record.app_id


async def viewer(request: Request, found: Found) -> Viewer:
    state = session_state(request, found)
    if state is None or state.key_hash is None or state.expired(found.clock.now()):
        raise SignInRequired
    found_role = await key_role(found, state.key_hash)
    if found_role is None:
        raise SignInRequired
    return Viewer(found_role[0], found_role[1], state)


CurrentViewer = Annotated[Viewer, Depends(viewer)]


async def dash_app(
    app_id: Annotated[str, Path(max_length=64)], who: CurrentViewer, found: Found
) -> App:
    if not who.may_see(app_id):
        raise NotVisible
    async with found.database.read() as conn:
        app = await app_store.get_app(conn, app_id)
    if app is None:
        raise NotVisible
    return app


DashApp = Annotated[App, Depends(dash_app)]
"""The URL's app, when the signed-in viewer may see it."""


async def checked_form(request: Request, who: CurrentViewer) -> FormData:
    """The POSTed form, once its `csrf` field matched the session's token."""
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str) or not same_token(who.csrf, token):
        raise CsrfRejected
    return form


async def checked_header(request: Request, who: CurrentViewer) -> Viewer:
    """For fetch() calls: the `X-CSRF-Token` header must match the session's token."""
    if not same_token(who.csrf, request.headers.get("x-csrf-token")):
        raise CsrfRejected
    return who


CheckedForm = Annotated[FormData, Depends(checked_form)]
ScriptViewer = Annotated[Viewer, Depends(checked_header)]


_NOT_FOUND = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found · Clarion</title>'
    '<link rel="stylesheet" href="/static/dashboard/dashboard.css"></head><body><main id="main">'
    "<h1>Not found</h1><p>No such page, or it is of an app your key cannot see.</p>"
    '<p><a href="/">Back to the dashboard</a></p></main></body></html>'
)


def _wants_page(request: Request) -> bool:
    return request.method == "GET" and not request.url.path.endswith(".json")


def install_handlers(api: FastAPI) -> None:
    """Answers for the dashboard's own exceptions."""

    async def on_sign_in(request: Request, exc: Exception) -> Response:
        if _wants_page(request):
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)
        return JSONResponse({"detail": "sign in first"}, status_code=401)

    async def on_csrf(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": "the form's CSRF token is missing or stale"}, 403)

    async def on_hidden(request: Request, exc: Exception) -> Response:
        if _wants_page(request):
            return HTMLResponse(_NOT_FOUND, status_code=404)
        return JSONResponse({"detail": "not found"}, status_code=404)

    api.add_exception_handler(SignInRequired, on_sign_in)
    api.add_exception_handler(CsrfRejected, on_csrf)
    api.add_exception_handler(NotVisible, on_hidden)
