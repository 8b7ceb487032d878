"""Signing in and out, and the home page that leads to an app."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from clarion.api.services import Services
from clarion.model.keys import Role, hash_key
from clarion.store import apps as app_store
from clarion.web.dashboard.access import (
    CheckedForm,
    CurrentViewer,
    Found,
    key_role,
    sealer,
    session_state,
)
from clarion.web.dashboard.render import page
from clarion.web.dashboard.session import (
    COOKIE,
    LIFETIME,
    SessionState,
    new_state,
    same_token,
    signed_in,
)

router = APIRouter()


def set_session(response: Response, request: Request, found: Services, state: SessionState) -> None:
    response.set_cookie(
        COOKIE,
        sealer(found).seal(state),
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never `//host` or a full URL (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/sign-in")
async def sign_in_form(request: Request, found: Found, next: str | None = None) -> Response:
    state = session_state(request, found) or new_state()
    response = page(request, "sign_in.html", None, csrf=state.csrf, next=_safe_next(next), error="")
    set_session(response, request, found, state)
    return response


@router.post("/sign-in")
async def sign_in(request: Request, found: Found) -> Response:
    """Check the key; a new session (and CSRF token) replaces the anonymous one."""
    state = session_state(request, found)
    form = await request.form()
    token, key, target = form.get("csrf"), form.get("key"), form.get("next")
    if state is None or not isinstance(token, str) or not same_token(state.csrf, token):
        fresh = new_state()
        expired = page(
            request,
            "sign_in.html",
            None,
            status_code=403,
            csrf=fresh.csrf,
            next="/",
            error="The form expired. Please sign in again.",
        )
        set_session(expired, request, found, fresh)
        return expired
    key_hash = hash_key(key.strip()) if isinstance(key, str) and key.strip() else ""
    if not key_hash or await key_role(found, key_hash) is None:
        return page(
            request,
            "sign_in.html",
            None,
            status_code=401,
            csrf=state.csrf,
            next=_safe_next(target if isinstance(target, str) else None),
            error="That key is not a live server key of an app, nor the admin key.",
        )
    response = RedirectResponse(
        _safe_next(target if isinstance(target, str) else None), status_code=303
    )
    set_session(response, request, found, signed_in(key_hash, found.clock.now()))
    return response


@router.post("/sign-out")
async def sign_out(request: Request, found: Found, form: CheckedForm) -> Response:
    response = RedirectResponse("/sign-in", status_code=303)
    set_session(response, request, found, new_state())
    return response


@router.get("/")
async def home(request: Request, who: CurrentViewer, found: Found) -> Response:
    """The admin chooses an app; an app's key goes straight to its overview."""
    if who.role is not Role.ADMIN and who.app_id is not None:
        return RedirectResponse(f"/apps/{who.app_id}", status_code=303)
    async with found.database.read() as conn:
        apps = await app_store.list_apps(conn)
    return page(request, "apps.html", who, apps=apps)
