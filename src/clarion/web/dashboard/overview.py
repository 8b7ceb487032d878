"""An app's overview: its audience, its last day of sending, its providers' health."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from clarion.model.consent import ConsentStatus
from clarion.model.platform import Platform
from clarion.store import credentials as credential_store
from clarion.web.dashboard import queries
from clarion.web.dashboard.access import CurrentViewer, DashApp, Found
from clarion.web.dashboard.render import page

router = APIRouter()
EXPIRY_WARNING = timedelta(days=30)


@router.get("/apps/{app_id}")
async def overview(request: Request, app: DashApp, who: CurrentViewer, found: Found) -> Response:
    now = found.clock.now()
    async with found.database.read() as conn:
        counts = await queries.device_counts(conn, app.id)
        activity = await queries.recent_activity(conn, app.id, now)
        stored = {c.provider: c for c in await credential_store.list_credentials(conn, app.id)}
    providers = []
    for platform in Platform:
        credential = stored.get(platform.value)
        state = "not configured" if credential is None else credential.status
        expires = credential.expires_at if credential else None
        providers.append(
            {
                "name": platform.value,
                "state": state,
                "last_error": credential.last_error if credential else None,
                "last_error_at": credential.last_error_at if credential else None,
                "expires_at": expires,
                "expiring": expires is not None and expires - now < EXPIRY_WARNING,
            }
        )
    return page(
        request,
        "overview.html",
        who,
        app=app,
        section="overview",
        counts=counts,
        consents=[status.value for status in ConsentStatus],
        activity=activity,
        providers=providers,
    )
