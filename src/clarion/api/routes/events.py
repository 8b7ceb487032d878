"""What the app reports back: a push was received, opened or dismissed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from clarion.api.auth import ClientApp
from clarion.api.errors import not_found
from clarion.api.services import Services, services
from clarion.store import deliveries as delivery_store

router = APIRouter(prefix="/v1/apps/{app_id}/events", tags=["events"])
Found = Annotated[Services, Depends(services)]


class DeliveryEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(max_length=40)
    notification_id: str = Field(max_length=40)
    type: Literal["received", "opened", "dismissed"]
    at: datetime | None = Field(default=None, description="when it happened on the device")


@router.post("", status_code=204)
async def report_event(app: ClientApp, body: DeliveryEvent, found: Found) -> Response:
    """Record the first received/opened/dismissed report of a delivery (repeats are harmless)."""
    async with found.database.write() as conn:
        known = await delivery_store.record_event(
            conn, app.id, body.notification_id, body.device_id, body.type, found.clock.now()
        )
    if not known:
        raise not_found("delivery")
    return Response(status_code=204)
