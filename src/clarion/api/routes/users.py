"""Users: their devices, their preferences, and erasure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict

from clarion.api.auth import ClientApp, ServerApp
from clarion.api.errors import not_found
from clarion.api.serialize import device_json, preferences_json
from clarion.api.services import Services, services
from clarion.api.validation import Checks
from clarion.model.device import check_user_id
from clarion.model.locale import check_timezone
from clarion.model.preferences import (
    UserPreferences,
    parse_caps,
    parse_category_choices,
    parse_quiet_hours,
)
from clarion.store import devices as device_store
from clarion.store import users as user_store

router = APIRouter(prefix="/v1/apps/{app_id}/users", tags=["users"])
Found = Annotated[Services, Depends(services)]


class PutPreferences(BaseModel):
    """The whole preference set; omitted fields fall back to the app's defaults.

    `quiet_hours: null` sent explicitly means "no quiet hours for me", while an
    omitted `quiet_hours` means "use the app's window".
    """

    model_config = ConfigDict(extra="forbid")
    categories: Any = None
    quiet_hours: Any = None
    timezone: str | None = None
    caps: Any = None


@router.get("/{user_id}")
async def get_user(app: ServerApp, user_id: str, found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        if not await user_store.user_exists(conn, app.id, user_id):
            raise not_found("user")
        devices = await device_store.user_devices(conn, app.id, user_id)
        prefs = await user_store.get_preferences(conn, app.id, user_id)
    return {
        "user_id": user_id,
        "devices": [device_json(device) for device in devices],
        "preferences": preferences_json(prefs),
    }


@router.put("/{user_id}/preferences")
async def put_preferences(
    app: ClientApp, user_id: str, body: PutPreferences, found: Found
) -> dict[str, Any]:
    checks = Checks()
    checks.run(lambda: check_user_id(user_id))
    categories = checks.run(lambda: parse_category_choices(body.categories)) or {}
    quiet = checks.run(lambda: parse_quiet_hours(body.quiet_hours))
    timezone = body.timezone
    if timezone is not None:
        checks.run(lambda: check_timezone(timezone))
    caps = checks.run(lambda: parse_caps(body.caps)) if body.caps is not None else None
    checks.done()
    prefs = UserPreferences(
        categories=categories,
        quiet_hours=quiet,
        quiet_hours_set="quiet_hours" in body.model_fields_set,
        timezone=timezone,
        caps=caps,
    )
    async with found.database.write() as conn:
        await user_store.put_preferences(conn, app.id, user_id, prefs, found.clock.now())
    return {"user_id": user_id, "preferences": preferences_json(prefs)}


@router.delete("/{user_id}", status_code=204)
async def erase_user(app: ServerApp, user_id: str, found: Found) -> Response:
    """Erase the user's devices, tokens, tags and preferences; consent proof survives hashed."""
    async with found.database.write() as conn:
        if not await user_store.user_exists(conn, app.id, user_id):
            raise not_found("user")
        await user_store.erase_user(conn, app.id, user_id)
    return Response(status_code=204)
