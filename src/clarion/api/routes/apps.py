"""Apps and their keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from clarion.api.auth import ServerApp, require_admin
from clarion.api.errors import not_found
from clarion.api.serialize import app_json, key_json
from clarion.api.services import Services, services
from clarion.api.validation import Checks
from clarion.model.app import parse_categories
from clarion.model.errors import FieldError
from clarion.model.keys import Role
from clarion.model.locale import check_timezone
from clarion.model.preferences import parse_caps, parse_quiet_hours
from clarion.store import apps as app_store

router = APIRouter(prefix="/v1/apps", tags=["apps"])
Found = Annotated[Services, Depends(services)]


class CreateApp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    default_timezone: str = "UTC"


class PatchApp(BaseModel):
    """Only the fields sent change; `quiet_hours: null` removes the app's window."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    default_timezone: str | None = None
    quiet_hours: Any = None
    caps: Any = None
    categories: Any = None


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role = Field(description="server or client")


@router.post("", status_code=201, dependencies=[Depends(require_admin)])
async def create_app(body: CreateApp, found: Found) -> dict[str, Any]:
    """Create an app; its server and client keys are in this answer only."""
    check_timezone(body.default_timezone, "default_timezone")
    async with found.database.write() as conn:
        app, server, client = await app_store.create_app(
            conn, name=body.name, now=found.clock.now(), default_timezone=body.default_timezone
        )
    return {**app_json(app), "server_key": server.key, "client_key": client.key}


@router.get("", dependencies=[Depends(require_admin)])
async def list_apps(found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        apps = await app_store.list_apps(conn)
    return {"items": [app_json(app) for app in apps], "next_cursor": None}


@router.get("/{app_id}")
async def get_app(app: ServerApp) -> dict[str, Any]:
    return app_json(app)


@router.patch("/{app_id}")
async def patch_app(app: ServerApp, body: PatchApp, found: Found) -> dict[str, Any]:
    changes = _app_changes(body)
    async with found.database.write() as conn:
        updated = await app_store.update_app(conn, app.id, changes, found.clock.now())
    if updated is None:
        raise not_found("app")
    return app_json(updated)


def _app_changes(body: PatchApp) -> dict[str, Any]:
    """The validated columns to change; every bad field is reported together."""
    sent = body.model_fields_set
    checks = Checks()
    changes: dict[str, Any] = {}
    if "name" in sent and body.name is not None:
        changes["name"] = body.name
    if "default_timezone" in sent:
        zone = body.default_timezone or ""
        changes["default_timezone"] = checks.run(lambda: check_timezone(zone, "default_timezone"))
    if "quiet_hours" in sent:
        quiet = checks.run(lambda: parse_quiet_hours(body.quiet_hours))
        changes["quiet_hours"] = quiet.as_json() if quiet else None
    if "caps" in sent:
        caps = checks.run(lambda: parse_caps(body.caps)) or ()
        changes["caps"] = [cap.as_json() for cap in caps]
    if "categories" in sent:
        categories = checks.run(lambda: parse_categories(body.categories)) or ()
        changes["categories"] = [category.as_json() for category in categories]
    checks.done()
    return changes


@router.post("/{app_id}/keys", status_code=201)
async def create_key(app: ServerApp, body: CreateKey, found: Found) -> dict[str, Any]:
    """A new key for the app; the key itself is shown only in this answer."""
    if body.role is Role.ADMIN:
        raise FieldError("role", "must be server or client")
    async with found.database.write() as conn:
        record, new = await app_store.create_key(conn, app.id, body.role, found.clock.now())
    return {**key_json(record), "key": new.key}


@router.get("/{app_id}/keys")
async def list_keys(app: ServerApp, found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        keys = await app_store.list_keys(conn, app.id)
    return {"items": [key_json(key) for key in keys], "next_cursor": None}


@router.delete("/{app_id}/keys/{key_id}", status_code=204)
async def revoke_key(app: ServerApp, key_id: str, found: Found) -> Response:
    async with found.database.write() as conn:
        revoked = await app_store.revoke_key(conn, app.id, key_id, found.clock.now())
    if not revoked:
        raise not_found("key")
    return Response(status_code=204)
