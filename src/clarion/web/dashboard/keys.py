"""Webhooks and API keys: secrets are shown once, on the page that created them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from clarion.api.errors import Problem
from clarion.api.routes.webhooks import EVENT_NAMES
from clarion.api.services import Services
from clarion.model.app import App
from clarion.model.errors import FieldError
from clarion.model.keys import Role
from clarion.providers.outbound import OutboundPolicy, resolve_public
from clarion.store import apps as app_store
from clarion.store import webhooks as webhook_store
from clarion.store.sealing import Sealer
from clarion.web.dashboard.access import (
    CheckedForm,
    CurrentViewer,
    DashApp,
    Found,
    NotVisible,
    Viewer,
)
from clarion.web.dashboard.render import page

router = APIRouter()


async def _webhooks_page(
    request: Request,
    app: App,
    who: Viewer,
    found: Services,
    *,
    created: tuple[webhook_store.Webhook, str] | None = None,
    error: str = "",
    url: str = "",
) -> Response:
    async with found.database.read() as conn:
        hooks = await webhook_store.list_webhooks(conn, app.id)
    return page(
        request,
        "webhooks.html",
        who,
        status_code=422 if error else (201 if created else 200),
        app=app,
        section="webhooks",
        hooks=hooks,
        created=created,
        error=error,
        url=url,
        event_names=sorted(EVENT_NAMES - {"*"}),
    )


@router.get("/apps/{app_id}/webhooks")
async def webhook_list(
    request: Request, app: DashApp, who: CurrentViewer, found: Found
) -> Response:
    return await _webhooks_page(request, app, who, found)


@router.post("/apps/{app_id}/webhooks")
async def webhook_create(
    request: Request, app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm
) -> Response:
    """Checked like the API's (https, not a private address); the secret is shown once."""
    url = form.get("url")
    url = url.strip() if isinstance(url, str) else ""
    events = [e for e in form.getlist("events") if isinstance(e, str) and e in EVENT_NAMES]
    try:
        if not events:
            raise FieldError("events", "choose at least one event")
        policy = OutboundPolicy(allow_private=found.settings.allow_private_endpoints)
        await resolve_public(url, policy, field="url", allow_list=False, resolver=found.resolver)
    except (FieldError, Problem) as error:
        message = error.message if isinstance(error, FieldError) else str(error)
        return await _webhooks_page(request, app, who, found, error=message, url=url)
    async with found.database.write() as conn:
        created = await webhook_store.create_webhook(
            conn, app.id, url, events, Sealer(found.settings.secret_key), found.clock.now()
        )
    return await _webhooks_page(request, app, who, found, created=created)


@router.post("/apps/{app_id}/webhooks/{webhook_id}/delete")
async def webhook_delete(
    app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm, webhook_id: str
) -> Response:
    async with found.database.write() as conn:
        if not await webhook_store.delete_webhook(conn, app.id, webhook_id):
            raise NotVisible
    return RedirectResponse(f"/apps/{app.id}/webhooks", status_code=303)


async def _keys_page(
    request: Request, app: App, who: Viewer, found: Services, new_key: str = "", role: str = ""
) -> Response:
    async with found.database.read() as conn:
        keys = await app_store.list_keys(conn, app.id)
    return page(
        request,
        "keys.html",
        who,
        status_code=201 if new_key else 200,
        app=app,
        section="keys",
        keys=keys,
        new_key=new_key,
        new_role=role,
    )


@router.get("/apps/{app_id}/keys")
async def key_list(request: Request, app: DashApp, who: CurrentViewer, found: Found) -> Response:
    return await _keys_page(request, app, who, found)


@router.post("/apps/{app_id}/keys")
async def key_create(
    request: Request, app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm
) -> Response:
    role = Role.CLIENT if form.get("role") == "client" else Role.SERVER
    async with found.database.write() as conn:
        _, new = await app_store.create_key(conn, app.id, role, found.clock.now())
    return await _keys_page(request, app, who, found, new_key=new.key, role=role.value)


@router.post("/apps/{app_id}/keys/{key_id}/revoke")
async def key_revoke(
    app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm, key_id: str
) -> Response:
    """Revoke at once: requests with it fail, and dashboard sessions signed in with it end."""
    async with found.database.write() as conn:
        if not await app_store.revoke_key(conn, app.id, key_id, found.clock.now()):
            raise NotVisible
    return RedirectResponse(f"/apps/{app.id}/keys", status_code=303)
