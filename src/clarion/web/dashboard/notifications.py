"""Sent notifications: the list, one campaign's live funnel and timeline, one delivery's story."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from clarion.api.routes.notifications import notification_json
from clarion.store import deliveries as delivery_store
from clarion.store import notifications as store
from clarion.store.notifications import DeliveryStatus
from clarion.web.dashboard import queries
from clarion.web.dashboard.access import CurrentViewer, DashApp, Found, NotVisible
from clarion.web.dashboard.render import page

router = APIRouter()
LOG_SIZE = 200


@router.get("/apps/{app_id}/notifications")
async def notification_list(
    request: Request, app: DashApp, who: CurrentViewer, found: Found
) -> Response:
    async with found.database.read() as conn:
        items = await queries.recent_notifications(conn, app.id)
    return page(request, "notifications.html", who, app=app, section="notifications", items=items)


async def _progress(found: Any, app_id: str, notification_id: str) -> dict[str, Any]:
    async with found.database.read() as conn:
        record = await store.get_notification(conn, app_id, notification_id)
        if record is None:
            raise NotVisible
        stats = await store.funnel(conn, notification_id)
        minutes = await queries.sends_per_minute(conn, app_id, notification_id)
    data = notification_json(record, stats)
    data["funnel"] = queries.funnel_steps(stats)
    data["timeline"] = [{"minute": minute, "sent": count} for minute, count in minutes]
    return data


@router.get("/apps/{app_id}/notifications/{notification_id}/progress.json")
async def progress(
    app: DashApp, who: CurrentViewer, found: Found, notification_id: str
) -> Response:
    """What the notification page polls while the campaign runs."""
    return JSONResponse(await _progress(found, app.id, notification_id))


@router.get("/apps/{app_id}/notifications/{notification_id}")
async def notification_page(
    request: Request,
    app: DashApp,
    who: CurrentViewer,
    found: Found,
    notification_id: str,
    status: DeliveryStatus | None = None,
) -> Response:
    data = await _progress(found, app.id, notification_id)
    async with found.database.read() as conn:
        log = await delivery_store.list_deliveries(
            conn, app.id, notification_id, status=status, after=None, limit=LOG_SIZE
        )
        record = await store.get_notification(conn, app.id, notification_id)
    assert record is not None  # noqa: S101 - _progress found it
    rows = [(item, delivery_store.explain(item, record)) for item in log]
    top = max([step["count"] for step in data["funnel"]] + [1])
    peak = max([point["sent"] for point in data["timeline"]] + [1])
    return page(
        request,
        "notification.html",
        who,
        app=app,
        section="notifications",
        n=data,
        top=top,
        peak=peak,
        log=rows,
        request_json=json.dumps(data["request"], indent=2, ensure_ascii=False),
        status=status.value if status else "",
        statuses=[s.value for s in DeliveryStatus],
    )


@router.get("/apps/{app_id}/notifications/{notification_id}/deliveries/{device_id}")
async def delivery_page(
    request: Request,
    app: DashApp,
    who: CurrentViewer,
    found: Found,
    notification_id: str,
    device_id: str,
) -> Response:
    """Why this device got (or did not get) this notification."""
    async with found.database.read() as conn:
        record = await store.get_notification(conn, app.id, notification_id)
        item = (
            await delivery_store.get_delivery(conn, app.id, notification_id, device_id)
            if record
            else None
        )
    if record is None or item is None:
        raise NotVisible
    return page(
        request,
        "delivery.html",
        who,
        app=app,
        section="notifications",
        record=record,
        item=item,
        explain=delivery_store.explain(item, record),
    )
