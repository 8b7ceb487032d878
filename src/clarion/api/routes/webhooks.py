"""Webhooks: where Clarion posts events (signed) about an app."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from clarion.api.auth import ServerApp
from clarion.api.errors import not_found
from clarion.api.serialize import iso
from clarion.api.services import Services, services
from clarion.model.errors import FieldError
from clarion.providers.outbound import OutboundPolicy, resolve_public
from clarion.store import webhooks as store
from clarion.store.sealing import Sealer

router = APIRouter(prefix="/v1/apps/{app_id}/webhooks", tags=["webhooks"])
Found = Annotated[Services, Depends(services)]
EVENT_NAMES = {event.value for event in store.EventType} | {"*"}


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048, description="https URL that receives POSTed events")
    events: list[str] = Field(
        min_length=1, description=f"event types, or '*': {', '.join(sorted(EVENT_NAMES))}"
    )


def webhook_json(hook: store.Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "created_at": iso(hook.created_at),
    }


@router.post("", status_code=201)
async def create_webhook(app: ServerApp, body: CreateWebhook, found: Found) -> dict[str, Any]:
    """Subscribe a URL; the answer carries the signing `secret`, shown only now."""
    for index, name in enumerate(body.events):
        if name not in EVENT_NAMES:
            raise FieldError(f"events.{index}", f"{name!r} is not an event type")
    policy = OutboundPolicy(allow_private=found.settings.allow_private_endpoints)
    await resolve_public(body.url, policy, field="url", allow_list=False, resolver=found.resolver)
    async with found.database.write() as conn:
        hook, secret = await store.create_webhook(
            conn,
            app.id,
            body.url,
            list(dict.fromkeys(body.events)),
            Sealer(found.settings.secret_key),
            found.clock.now(),
        )
    return {**webhook_json(hook), "secret": secret}


@router.get("")
async def list_webhooks(app: ServerApp, found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        hooks = await store.list_webhooks(conn, app.id)
    return {"items": [webhook_json(hook) for hook in hooks], "next_cursor": None}


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(app: ServerApp, webhook_id: str, found: Found) -> Response:
    async with found.database.write() as conn:
        deleted = await store.delete_webhook(conn, app.id, webhook_id)
    if not deleted:
        raise not_found("webhook")
    return Response(status_code=204)
