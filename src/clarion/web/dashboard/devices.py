"""Finding devices (user id, token prefix or filter) and one device's whole story."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from clarion.api.routes.segments import canonical_filter
from clarion.api.serialize import device_json
from clarion.model.errors import FieldError
from clarion.store import consent as ledger
from clarion.store import devices as device_store
from clarion.store import topics as topic_store
from clarion.web.dashboard import queries
from clarion.web.dashboard.access import CurrentViewer, DashApp, Found, NotVisible
from clarion.web.dashboard.render import page

router = APIRouter()
SEARCH_MODES = ("user", "token", "filter")


@router.get("/apps/{app_id}/devices")
async def device_search(
    request: Request,
    app: DashApp,
    who: CurrentViewer,
    found: Found,
    q: str = "",
    by: str = "user",
) -> Response:
    """Without a query, the first devices by id; a bad filter shows where it went wrong."""
    by = by if by in SEARCH_MODES else "user"
    query = q.strip()
    error = ""
    items = []
    if by == "filter" and query:
        try:
            canonical_filter(query, "filter")
        except FieldError as bad:
            error = bad.message
    if not error:
        async with found.database.read() as conn:
            items = await queries.search_devices(
                conn,
                app.id,
                user_id=query if by == "user" and query else None,
                token_prefix=query if by == "token" and query else None,
                filter_text=query if by == "filter" and query else None,
                now=found.clock.now(),
            )
    return page(
        request,
        "devices.html",
        who,
        app=app,
        section="devices",
        q=q,
        by=by,
        error=error,
        devices=[device_json(device) for device in items],
    )


@router.get("/apps/{app_id}/devices/{device_id}")
async def device_page(
    request: Request, app: DashApp, who: CurrentViewer, found: Found, device_id: str
) -> Response:
    async with found.database.read() as conn:
        device = await device_store.get_device(conn, app.id, device_id)
        if device is None:
            raise NotVisible
        topics = await topic_store.device_topic_names(conn, app.id, device_id)
        history = await ledger.device_history(conn, app.id, device_id)
        recent = await queries.device_deliveries(conn, app.id, device_id)
    return page(
        request,
        "device.html",
        who,
        app=app,
        section="devices",
        device=device_json(device, topics),
        history=history,
        deliveries=recent,
    )
