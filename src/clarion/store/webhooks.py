"""Webhook subscriptions and the events queued for them.

Events are queued as `webhook` jobs in the same transaction as the change
that caused them, so a committed change always gets its event and a rolled
back one never does. One job carries the events of one batch for one
webhook, so a campaign with many failures does not flood the queue.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.ids import new_id
from clarion.store import queue
from clarion.store.schema_webhooks import webhooks
from clarion.store.sealing import Sealer

WEBHOOK_JOB = "webhook"


class EventType(StrEnum):
    NOTIFICATION_COMPLETED = "notification.completed"
    DELIVERY_FAILED = "delivery.failed"
    DEVICE_DEACTIVATED = "device.deactivated"
    CREDENTIAL_FAILING = "credential.failing"


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    app_id: str
    url: str
    events: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    data: Mapping[str, Any]


def sealing_purpose(webhook_id: str) -> str:
    """The associated data a webhook secret is sealed with (not a provider's)."""
    return f"webhook:{webhook_id}"


def _webhook(row: sa.Row[Any]) -> Webhook:
    return Webhook(row.id, row.app_id, row.url, tuple(row.events), row.created_at)


async def create_webhook(
    conn: AsyncConnection,
    app_id: str,
    url: str,
    events: Sequence[str],
    sealer: Sealer,
    now: datetime,
) -> tuple[Webhook, str]:
    """A new webhook and its signing secret (shown only now)."""
    webhook_id = new_id("whk")
    secret = "whsec_" + secrets.token_urlsafe(32)
    sealed = sealer.seal(secret.encode(), app_id=app_id, provider=sealing_purpose(webhook_id))
    await conn.execute(
        webhooks.insert().values(
            id=webhook_id,
            app_id=app_id,
            url=url,
            events=list(events),
            sealed_secret=sealed,
            created_at=now,
        )
    )
    return Webhook(webhook_id, app_id, url, tuple(events), now), secret


async def list_webhooks(conn: AsyncConnection, app_id: str) -> list[Webhook]:
    rows = await conn.execute(
        webhooks.select().where(webhooks.c.app_id == app_id).order_by(webhooks.c.id)
    )
    return [_webhook(row) for row in rows]


async def delete_webhook(conn: AsyncConnection, app_id: str, webhook_id: str) -> bool:
    result = await conn.execute(
        webhooks.delete().where(webhooks.c.app_id == app_id, webhooks.c.id == webhook_id)
    )
    return result.rowcount > 0


async def webhook_secret(
    conn: AsyncConnection, app_id: str, webhook_id: str, sealer: Sealer
) -> tuple[Webhook, str] | None:
    row = (
        await conn.execute(
            webhooks.select().where(webhooks.c.app_id == app_id, webhooks.c.id == webhook_id)
        )
    ).first()
    if row is None:
        return None
    secret = sealer.open(row.sealed_secret, app_id=app_id, provider=sealing_purpose(webhook_id))
    return _webhook(row), secret.decode()


async def sealed_secrets(conn: AsyncConnection) -> list[tuple[str, str, bytes]]:
    """(app id, webhook id, sealed secret) of every webhook, for secret rotation."""
    rows = await conn.execute(sa.select(webhooks.c.app_id, webhooks.c.id, webhooks.c.sealed_secret))
    return [(row.app_id, row.id, row.sealed_secret) for row in rows]


async def reseal_secret(conn: AsyncConnection, app_id: str, webhook_id: str, sealed: bytes) -> None:
    await conn.execute(
        webhooks.update()
        .where(webhooks.c.app_id == app_id, webhooks.c.id == webhook_id)
        .values(sealed_secret=sealed)
    )


async def emit(conn: AsyncConnection, app_id: str, events: Sequence[Event], now: datetime) -> int:
    """Queue `events` for every webhook of the app that subscribed to their type."""
    if not events:
        return 0
    hooks = await list_webhooks(conn, app_id)
    jobs = []
    for hook in hooks:
        wanted = [
            {
                "id": new_id("evt"),
                "type": event.type.value,
                "created_at": now.isoformat().replace("+00:00", "Z"),
                "data": dict(event.data),
            }
            for event in events
            if "*" in hook.events or event.type.value in hook.events
        ]
        if wanted:
            jobs.append(
                queue.NewJob(WEBHOOK_JOB, app_id, {"webhook_id": hook.id, "events": wanted}, now)
            )
    await queue.enqueue(conn, jobs, now)
    return len(jobs)


async def emit_completed(
    conn: AsyncConnection, app_id: str, notification_id: str, now: datetime
) -> None:
    """The notification finished: queue `notification.completed` with its funnel."""
    from clarion.store.notifications import funnel

    stats = await funnel(conn, notification_id)
    event = Event(
        EventType.NOTIFICATION_COMPLETED, {"notification_id": notification_id, "stats": stats}
    )
    await emit(conn, app_id, [event], now)
