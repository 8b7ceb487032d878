"""The device registry: registration, reads, changes, consent and topics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from clarion.api.auth import ClientApp, ServerApp
from clarion.api.errors import not_found
from clarion.api.routes.providers import check_device_url
from clarion.api.serialize import consent_event_json, device_json
from clarion.api.services import Services, request_origin, services, services_of
from clarion.api.validation import Checks
from clarion.model.consent import ConsentChange, ConsentStatus
from clarion.model.device import (
    Registration,
    check_app_version,
    check_tags,
    check_topic,
    check_user_id,
    normalize_token,
)
from clarion.model.locale import check_locale, check_timezone
from clarion.model.platform import Platform
from clarion.store import consent as ledger
from clarion.store import devices as device_store
from clarion.store import topics as topic_store
from clarion.store.pagination import check_limit, decode_after, page_json
from clarion.store.registration import RegistrationWrite

router = APIRouter(prefix="/v1/apps/{app_id}/devices", tags=["devices"])
Found = Annotated[Services, Depends(services)]


class ConsentBody(BaseModel):
    """A consent answer and where it came from."""

    model_config = ConfigDict(extra="forbid")
    status: ConsentStatus
    source: str = Field(default="api", min_length=1, max_length=64)
    text_version: str | None = Field(default=None, max_length=64)
    client_time: datetime | None = None

    def change(self) -> ConsentChange:
        return ConsentChange(self.status, self.source, self.text_version, self.client_time)


class RegisterDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: Platform
    token: str | dict[str, Any] = Field(
        description="the platform token; for webpush the PushSubscription JSON"
    )
    user_id: str | None = None
    timezone: str | None = None
    locale: str | None = None
    app_version: str | None = None
    tags: dict[str, Any] | None = None
    consent: ConsentBody | None = None


class PatchDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = None
    timezone: str | None = None
    locale: str | None = None
    app_version: str | None = None
    tags: dict[str, Any] | None = None
    active: bool | None = None


def _check_profile(checks: Checks, body: RegisterDevice | PatchDevice) -> dict[str, Any]:
    """Validate the fields registration and patch share; returns the clean values."""
    clean: dict[str, Any] = {}
    for name, check in (
        ("user_id", check_user_id),
        ("timezone", check_timezone),
        ("locale", check_locale),
        ("app_version", check_app_version),
    ):
        value = getattr(body, name)
        if value is not None:
            clean[name] = checks.run(lambda c=check, v=value: c(v))  # type: ignore[misc]
    if body.tags is not None:
        clean["tags"] = checks.run(lambda: check_tags(body.tags))
    return clean


@router.post("", status_code=201)
async def register_device(
    app: ClientApp, body: RegisterDevice, request: Request, response: Response
) -> dict[str, Any]:
    """Register a device, or update the one with this platform and token (200).

    The hot path of the API: registrations arriving together share one
    transaction (`Services.registrations`).
    """
    found = services_of(request)
    checks = Checks()
    normalized = checks.run(lambda: normalize_token(body.platform, body.token, found.token_policy))
    clean = _check_profile(checks, body)
    checks.done()
    assert normalized is not None  # noqa: S101 - checks.done() raised otherwise
    token, subscription = normalized
    await check_device_url(request, found, app.id, body.platform, token)
    registration = Registration(
        platform=body.platform, token=token, subscription=subscription, **clean
    )
    consent = body.consent.change() if body.consent else None
    write = RegistrationWrite(
        app, registration, consent, request_origin(request), found.clock.now()
    )
    result = await found.registrations.submit(write)
    if not result.created:
        response.status_code = 200
    return device_json(result.device)


@router.get("")
async def list_devices(
    app: ServerApp,
    found: Found,
    user_id: str | None = None,
    platform: Platform | None = None,
    active: bool | None = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    size = check_limit(limit)
    after = decode_after(cursor)
    async with found.database.read() as conn:
        items = await device_store.list_devices(
            conn,
            app.id,
            after=after,
            limit=size + 1,
            user_id=user_id,
            platform=platform,
            active=active,
        )
    return page_json(items, size, lambda device: device.id, device_json)


@router.get("/{device_id}")
async def get_device(app: ServerApp, device_id: str, found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        device = await device_store.get_device(conn, app.id, device_id)
        if device is None:
            raise not_found("device")
        topics = await topic_store.device_topic_names(conn, app.id, device_id)
    return device_json(device, topics)


@router.patch("/{device_id}")
async def patch_device(
    app: ServerApp, device_id: str, body: PatchDevice, found: Found
) -> dict[str, Any]:
    checks = Checks()
    clean = _check_profile(checks, body)
    checks.done()
    if body.active is not None:
        clean["active"] = body.active
    async with found.database.write() as conn:
        device = await device_store.patch_device(conn, app.id, device_id, clean, found.clock.now())
    if device is None:
        raise not_found("device")
    return device_json(device)


@router.delete("/{device_id}", status_code=204)
async def delete_device(app: ServerApp, device_id: str, found: Found) -> Response:
    async with found.database.write() as conn:
        deleted = await device_store.delete_device(conn, app.id, device_id)
    if not deleted:
        raise not_found("device")
    return Response(status_code=204)


@router.put("/{device_id}/consent")
async def put_consent(
    app: ClientApp, device_id: str, body: ConsentBody, request: Request, found: Found
) -> dict[str, Any]:
    """Record the person's consent answer; the change is appended to the ledger."""
    async with found.database.write() as conn:
        device = await device_store.set_consent(
            conn, app, device_id, body.change(), request_origin(request), found.clock.now()
        )
    if device is None:
        raise not_found("device")
    return {"device_id": device.id, "status": device.consent}


@router.get("/{device_id}/consent")
async def consent_history(app: ServerApp, device_id: str, found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        device = await device_store.get_device(conn, app.id, device_id)
        if device is None:
            raise not_found("device")
        events = await ledger.device_history(conn, app.id, device_id)
    return {
        "device_id": device_id,
        "status": device.consent,
        "items": [consent_event_json(event) for event in events],
    }


@router.put("/{device_id}/topics/{topic}")
async def subscribe(app: ClientApp, device_id: str, topic: str, found: Found) -> dict[str, Any]:
    check_topic(topic)
    async with found.database.write() as conn:
        if await device_store.get_device(conn, app.id, device_id) is None:
            raise not_found("device")
        await topic_store.subscribe(conn, app.id, device_id, topic, found.clock.now())
        topics = await topic_store.device_topic_names(conn, app.id, device_id)
    return {"device_id": device_id, "topics": topics}


@router.delete("/{device_id}/topics/{topic}")
async def unsubscribe(app: ClientApp, device_id: str, topic: str, found: Found) -> dict[str, Any]:
    check_topic(topic)
    async with found.database.write() as conn:
        if await device_store.get_device(conn, app.id, device_id) is None:
            raise not_found("device")
        await topic_store.unsubscribe(conn, app.id, device_id, topic)
        topics = await topic_store.device_topic_names(conn, app.id, device_id)
    return {"device_id": device_id, "topics": topics}
