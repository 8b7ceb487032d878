"""Read-only aggregates the dashboard shows and the API has no route for.

Every query takes the app id, like the store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.audience import parse_audience
from clarion.model.device import Device
from clarion.store.audience import audience_condition
from clarion.store.deliveries import DeliveryRecord
from clarion.store.deliveries import _record as delivery_record
from clarion.store.devices import _device
from clarion.store.notifications import NotificationRecord
from clarion.store.notifications import _record as notification_record
from clarion.store.schema import devices
from clarion.store.schema_pipeline import deliveries, notifications


@dataclass(frozen=True, slots=True)
class DeviceCounts:
    """Devices by platform, then by consent (and the inactive ones apart)."""

    by_platform: dict[str, dict[str, int]]
    total: int
    inactive: int


async def device_counts(conn: AsyncConnection, app_id: str) -> DeviceCounts:
    rows = await conn.execute(
        sa.select(devices.c.platform, devices.c.consent, devices.c.active, sa.func.count())
        .where(devices.c.app_id == app_id)
        .group_by(devices.c.platform, devices.c.consent, devices.c.active)
    )
    table: dict[str, dict[str, int]] = {}
    total = inactive = 0
    for platform, consent, active, count in rows:
        cell = table.setdefault(platform, {})
        cell[consent] = cell.get(consent, 0) + count
        total += count
        inactive += 0 if active else count
    return DeviceCounts(dict(sorted(table.items())), total, inactive)


async def recent_activity(conn: AsyncConnection, app_id: str, now: datetime) -> dict[str, int]:
    """The last 24 hours: notifications accepted, pushes sent, pushes failed."""
    since = now - timedelta(hours=24)
    sent = await conn.scalar(
        sa.select(sa.func.count()).where(
            deliveries.c.app_id == app_id, deliveries.c.sent_at >= since
        )
    )
    failed = await conn.scalar(
        sa.select(sa.func.count()).where(
            deliveries.c.app_id == app_id,
            deliveries.c.status == "failed",
            deliveries.c.updated_at >= since,
        )
    )
    created = await conn.scalar(
        sa.select(sa.func.count()).where(
            notifications.c.app_id == app_id, notifications.c.created_at >= since
        )
    )
    return {"notifications": created or 0, "sent": sent or 0, "failed": failed or 0}


async def recent_notifications(
    conn: AsyncConnection, app_id: str, limit: int = 50
) -> list[NotificationRecord]:
    rows = await conn.execute(
        notifications.select()
        .where(notifications.c.app_id == app_id)
        .order_by(notifications.c.created_at.desc(), notifications.c.id.desc())
        .limit(limit)
    )
    return [notification_record(row) for row in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_devices(
    conn: AsyncConnection,
    app_id: str,
    *,
    user_id: str | None = None,
    token_prefix: str | None = None,
    filter_text: str | None = None,
    now: datetime,
    limit: int = 100,
) -> list[Device]:
    """Devices by user id, by token prefix, or by a filter expression (already checked)."""
    condition: sa.ColumnElement[bool] = devices.c.app_id == app_id
    if filter_text:
        audience = parse_audience({"filter": filter_text})
        condition = audience_condition(app_id, audience, now=now)
    if user_id:
        condition = sa.and_(condition, devices.c.user_id == user_id)
    if token_prefix:
        pattern = _escape_like(token_prefix) + "%"
        condition = sa.and_(condition, devices.c.token.like(pattern, escape="\\"))
    rows = await conn.execute(devices.select().where(condition).order_by(devices.c.id).limit(limit))
    return [_device(row) for row in rows]


async def device_deliveries(
    conn: AsyncConnection, app_id: str, device_id: str, limit: int = 20
) -> list[DeliveryRecord]:
    rows = await conn.execute(
        deliveries.select()
        .where(deliveries.c.app_id == app_id, deliveries.c.device_id == device_id)
        .order_by(deliveries.c.updated_at.desc())
        .limit(limit)
    )
    return [delivery_record(row) for row in rows]


async def sends_per_minute(
    conn: AsyncConnection, app_id: str, notification_id: str
) -> list[tuple[str, int]]:
    """Pushes sent per UTC minute (`YYYY-MM-DDTHH:MM`), oldest first.

    Grouped in Python over the sent times: a campaign's deliveries are read
    once per poll, and the portable minute truncation differs by dialect.
    """
    rows = await conn.execute(
        sa.select(deliveries.c.sent_at).where(
            deliveries.c.app_id == app_id,
            deliveries.c.notification_id == notification_id,
            deliveries.c.sent_at.is_not(None),
        )
    )
    minutes: dict[str, int] = {}
    for (sent_at,) in rows:
        key = sent_at.strftime("%Y-%m-%dT%H:%M")
        minutes[key] = minutes.get(key, 0) + 1
    return sorted(minutes.items())


def funnel_steps(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The funnel as bars: targeted, suppressed by reason, sent, failed by reason, opened."""
    steps: list[dict[str, Any]] = [{"label": "targeted", "count": stats["targeted"], "kind": "all"}]
    for reason, count in sorted(stats["suppressed"].items()):
        steps.append({"label": f"suppressed: {reason}", "count": count, "kind": "suppressed"})
    pending = stats.get("scheduled", 0) + stats.get("queued", 0)
    if pending:
        steps.append({"label": "waiting", "count": pending, "kind": "pending"})
    steps.append({"label": "sent", "count": stats["sent"], "kind": "sent"})
    for reason, count in sorted(stats["failed"].items()):
        steps.append({"label": f"failed: {reason}", "count": count, "kind": "failed"})
    for other in ("expired", "cancelled"):
        if stats.get(other):
            steps.append({"label": other, "count": stats[other], "kind": "failed"})
    steps.append({"label": "opened", "count": stats["opened"], "kind": "opened"})
    return steps
