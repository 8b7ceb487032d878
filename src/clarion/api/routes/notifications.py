"""Sending: notifications, their funnel, cancellation and the per-device delivery log."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Response
from fastapi.responses import JSONResponse

from clarion.api.auth import ServerApp
from clarion.api.errors import Problem, field_problem, not_found
from clarion.api.routes.segments import resolve_for_request
from clarion.api.serialize import iso
from clarion.api.services import Services, services
from clarion.model.app import App
from clarion.model.audience import AudienceKind
from clarion.model.errors import FieldError
from clarion.model.notification import NotificationInvalid, NotificationSpec, parse_notification
from clarion.model.policy import find_category
from clarion.model.schedule import check_quiet_mode
from clarion.model.template import ALWAYS_PRESENT, check_content
from clarion.store import deliveries as delivery_store
from clarion.store import notifications as store
from clarion.store.notifications import DeliveryStatus, NotificationRecord
from clarion.store.pagination import check_limit, decode_after, page_json

router = APIRouter(prefix="/v1/apps/{app_id}/notifications", tags=["notifications"])
Found = Annotated[Services, Depends(services)]


async def _validate(app: App, body: Any, found: Services) -> NotificationSpec:
    """The spec, with a segment audience resolved to a snapshot of its filter."""
    try:
        spec = parse_notification(body, found.clock.now())
    except NotificationInvalid as invalid:
        raise field_problem(invalid.errors) from invalid
    errors = []
    audience = spec.audience
    try:
        audience = await resolve_for_request(found, app.id, spec.audience)
    except FieldError as error:
        errors.append(error)
    known = {"user_id"} if spec.audience.kind is AudienceKind.USERS else set()
    errors += check_content(spec.content, ALWAYS_PRESENT | known)
    if spec.category is not None and spec.category not in {c.name for c in app.categories}:
        errors.append(FieldError("category", f"{spec.category!r} is not a category of this app"))
    try:
        check_quiet_mode(spec.schedule.quiet_hours, find_category(app.categories, spec.category))
    except FieldError as error:
        errors.append(error)
    if errors:
        raise field_problem(errors)
    return replace(spec, audience=audience)


def _accepted(notification_id: str, status: str) -> JSONResponse:
    return JSONResponse({"id": notification_id, "status": status}, status_code=202)


@router.post("", status_code=202)
async def send_notification(
    app: ServerApp,
    found: Found,
    body: Annotated[dict[str, Any], Body(description="the notification; see the README")],
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    """Accept a notification: 202 at once; its audience is resolved in the background.

    With an `Idempotency-Key`, repeating the same body within 24 hours answers
    the first response and creates nothing; a different body is a 422.
    """
    spec = await _validate(app, body, found)
    now = found.clock.now()
    digest = store.request_hash(body)
    notification_id = store.new_notification_id()
    async with found.database.write() as conn:
        if idempotency_key is not None:
            claimed = await store.claim_idempotency_key(
                conn, app.id, idempotency_key, digest, notification_id, now
            )
            if not claimed:
                hit = await store.find_idempotent(conn, app.id, idempotency_key, now)
                if hit is None:
                    raise Problem(409, "Conflict", "the Idempotency-Key is being used; retry")
                if hit.request_hash != digest:
                    raise field_problem(
                        [FieldError("Idempotency-Key", "was used with a different request body")]
                    )
                first = await store.get_notification(conn, app.id, hit.notification_id)
                return _accepted(hit.notification_id, first.status.value if first else "planning")
        await store.create_notification(conn, app.id, spec, now, notification_id=notification_id)
    found.on_enqueue()
    status = "scheduled" if spec.schedule.send_at > now else "planning"
    return _accepted(notification_id, status)


def notification_json(record: NotificationRecord, stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status.value,
        "created_at": iso(record.created_at),
        "send_at": iso(record.send_at),
        "expires_at": iso(record.expires_at),
        "completed_at": iso(record.completed_at),
        "request": record.spec,
        "stats": stats,
    }


@router.get("/{notification_id}")
async def get_notification(app: ServerApp, notification_id: str, found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        record = await store.get_notification(conn, app.id, notification_id)
        if record is None:
            raise not_found("notification")
        stats = await store.funnel(conn, notification_id)
    return notification_json(record, stats)


@router.post("/{notification_id}/cancel")
async def cancel_notification(app: ServerApp, notification_id: str, found: Found) -> dict[str, Any]:
    """Stop what has not gone yet; what was sent stays sent."""
    async with found.database.write() as conn:
        record = await store.get_notification(conn, app.id, notification_id)
        if record is None:
            raise not_found("notification")
        cancelled = await store.cancel(conn, app.id, notification_id, found.clock.now())
        if not cancelled:
            raise Problem(409, "Conflict", f"the notification is already {record.status.value}")
        stats = await store.funnel(conn, notification_id)
        record = await store.get_notification(conn, app.id, notification_id)
    assert record is not None  # noqa: S101 - read in the same transaction
    return notification_json(record, stats)


@router.get("/{notification_id}/deliveries")
async def list_deliveries(
    app: ServerApp,
    notification_id: str,
    found: Found,
    status: DeliveryStatus | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    size = check_limit(limit)
    after = decode_after(cursor)
    async with found.database.read() as conn:
        if await store.get_notification(conn, app.id, notification_id) is None:
            raise not_found("notification")
        items = await delivery_store.list_deliveries(
            conn, app.id, notification_id, status=status, after=after, limit=size + 1
        )
    return page_json(items, size, lambda item: item.device_id, delivery_store.delivery_json)


@router.get("/{notification_id}/deliveries/{device_id}")
async def get_delivery(
    app: ServerApp, notification_id: str, device_id: str, found: Found
) -> dict[str, Any]:
    """One delivery, with `explain`: why it was or was not sent, and when it will be."""
    async with found.database.read() as conn:
        record = await store.get_notification(conn, app.id, notification_id)
        if record is None:
            raise not_found("notification")
        item = await delivery_store.get_delivery(conn, app.id, notification_id, device_id)
    if item is None:
        raise not_found("delivery")
    return {
        **delivery_store.delivery_json(item),
        "explain": delivery_store.explain(item, record),
    }


__all__ = ["Response", "router"]
