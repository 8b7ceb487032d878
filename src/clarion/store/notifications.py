"""Notifications, their idempotency keys and their funnel."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.ids import new_id
from clarion.model.notification import NotificationSpec, spec_json
from clarion.store import queue
from clarion.store.schema_pipeline import deliveries, idempotency_keys, jobs, notifications

IDEMPOTENCY_WINDOW = timedelta(hours=24)
PLAN_JOB = "plan"


class NotificationStatus(StrEnum):
    SCHEDULED = "scheduled"
    PLANNING = "planning"
    SENDING = "sending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


PENDING = (DeliveryStatus.SCHEDULED.value, DeliveryStatus.QUEUED.value)


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: str
    app_id: str
    status: NotificationStatus
    spec: Mapping[str, Any]
    send_at: datetime
    expires_at: datetime
    planned_through: str | None
    plan_state: Mapping[str, Any] | None
    targeted: int
    created_at: datetime
    completed_at: datetime | None


def _record(row: sa.Row[Any]) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        app_id=row.app_id,
        status=NotificationStatus(row.status),
        spec=row.spec,
        send_at=row.send_at,
        expires_at=row.expires_at,
        planned_through=row.planned_through,
        plan_state=row.plan_state,
        targeted=row.targeted,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


def request_hash(body: Any) -> str:
    """A stable digest of a request body, for Idempotency-Key comparison."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IdempotentHit:
    notification_id: str
    request_hash: str


async def find_idempotent(
    conn: AsyncConnection, app_id: str, key: str, now: datetime
) -> IdempotentHit | None:
    row = (
        await conn.execute(
            sa.select(idempotency_keys).where(
                idempotency_keys.c.app_id == app_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.created_at > now - IDEMPOTENCY_WINDOW,
            )
        )
    ).first()
    return IdempotentHit(row.notification_id, row.request_hash) if row else None


async def claim_idempotency_key(
    conn: AsyncConnection, app_id: str, key: str, digest: str, notification_id: str, now: datetime
) -> bool:
    """Reserve the key for this notification; False when another request holds it.

    On PostgreSQL a concurrent insert of the same key waits for the first
    transaction and then does nothing; SQLite serializes the writers.
    """
    await conn.execute(
        idempotency_keys.delete().where(
            idempotency_keys.c.app_id == app_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at <= now - IDEMPOTENCY_WINDOW,
        )
    )
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = (
        insert(idempotency_keys)
        .values(
            app_id=app_id,
            key=key,
            request_hash=digest,
            notification_id=notification_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["app_id", "key"])
    )
    result = await conn.execute(statement)
    return result.rowcount > 0


async def create_notification(
    conn: AsyncConnection,
    app_id: str,
    spec: NotificationSpec,
    now: datetime,
    *,
    notification_id: str | None = None,
) -> str:
    """Store the notification and its planning job in the caller's transaction."""
    ntf_id = notification_id or new_id("ntf")
    status = NotificationStatus.SCHEDULED if spec.schedule.send_at > now else None
    await conn.execute(
        notifications.insert().values(
            id=ntf_id,
            app_id=app_id,
            status=(status or NotificationStatus.PLANNING).value,
            spec=spec_json(spec),
            send_at=spec.schedule.send_at,
            expires_at=spec.expires_at,
            targeted=0,
            created_at=now,
        )
    )
    await queue.enqueue(
        conn,
        [queue.NewJob(PLAN_JOB, app_id, {"notification_id": ntf_id}, spec.schedule.send_at)],
        now,
    )
    return ntf_id


def new_notification_id() -> str:
    return new_id("ntf")


async def get_notification(
    conn: AsyncConnection, app_id: str, notification_id: str
) -> NotificationRecord | None:
    row = (
        await conn.execute(
            notifications.select().where(
                notifications.c.app_id == app_id, notifications.c.id == notification_id
            )
        )
    ).first()
    return _record(row) if row else None


async def funnel(conn: AsyncConnection, notification_id: str) -> dict[str, Any]:
    """Counts by status, with failed and suppressed broken down by reason."""
    rows = await conn.execute(
        sa.select(deliveries.c.status, deliveries.c.reason, sa.func.count())
        .where(deliveries.c.notification_id == notification_id)
        .group_by(deliveries.c.status, deliveries.c.reason)
    )
    stats: dict[str, Any] = {s.value: 0 for s in DeliveryStatus}
    stats["failed"] = {}
    stats["suppressed"] = {}
    for status, reason, count in rows:
        if status in ("failed", "suppressed"):
            key = reason or "unknown"
            stats[status][key] = stats[status].get(key, 0) + count
        else:
            stats[status] += count
    opened = (
        await conn.execute(
            sa.select(sa.func.count()).where(
                deliveries.c.notification_id == notification_id,
                deliveries.c.opened_at.is_not(None),
            )
        )
    ).scalar_one()
    stats["opened"] = opened
    stats["targeted"] = sum(
        v if isinstance(v, int) else sum(v.values()) for k, v in stats.items() if k != "opened"
    )
    return stats


async def set_status(
    conn: AsyncConnection,
    notification_id: str,
    status: NotificationStatus,
    now: datetime,
    *,
    only_from: tuple[NotificationStatus, ...] = (),
) -> bool:
    query = notifications.update().where(notifications.c.id == notification_id)
    if only_from:
        query = query.where(notifications.c.status.in_([s.value for s in only_from]))
    values: dict[str, Any] = {"status": status.value}
    if status in (NotificationStatus.COMPLETED, NotificationStatus.CANCELLED):
        values["completed_at"] = now
    result = await conn.execute(query.values(**values))
    return result.rowcount > 0


async def cancel(conn: AsyncConnection, app_id: str, notification_id: str, now: datetime) -> bool:
    """Stop what has not gone yet: pending deliveries become cancelled."""
    changed = await set_status(
        conn,
        notification_id,
        NotificationStatus.CANCELLED,
        now,
        only_from=(
            NotificationStatus.SCHEDULED,
            NotificationStatus.PLANNING,
            NotificationStatus.SENDING,
        ),
    )
    if not changed:
        return False
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.notification_id == notification_id, deliveries.c.status.in_(PENDING))
        .values(status=DeliveryStatus.CANCELLED.value, updated_at=now)
    )
    await queue.delete_for(conn, app_id, PLAN_JOB, "notification_id", notification_id)
    return True


async def has_pending(conn: AsyncConnection, notification_id: str) -> bool:
    found = await conn.execute(
        sa.select(sa.literal(1))
        .where(deliveries.c.notification_id == notification_id, deliveries.c.status.in_(PENDING))
        .limit(1)
    )
    return found.first() is not None


async def complete_if_done(conn: AsyncConnection, notification_id: str, now: datetime) -> bool:
    """Mark a fully planned notification completed once nothing is pending.

    Senders of different batches finish concurrently; on PostgreSQL each
    first locks the notification row, so the last one to commit sees every
    other batch's outcome (READ COMMITTED re-reads after the lock) and
    completes it. SQLite serializes writers already. The check and the
    change are one conditional UPDATE.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(_lock(notification_id))
    result = await conn.execute(_complete(notification_id, now))
    return result.rowcount > 0


def complete_if_done_sync(conn: sa.Connection, notification_id: str, now: datetime) -> bool:
    """`complete_if_done` on a synchronous connection (inside `Database.write_sync`)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_lock(notification_id))
    return conn.execute(_complete(notification_id, now)).rowcount > 0


def _lock(notification_id: str) -> sa.Select[Any]:
    return (
        sa.select(notifications.c.id).where(notifications.c.id == notification_id).with_for_update()
    )


def _complete(notification_id: str, now: datetime) -> sa.Update:
    pending = sa.exists().where(
        deliveries.c.notification_id == notification_id, deliveries.c.status.in_(PENDING)
    )
    return (
        notifications.update()
        .where(
            notifications.c.id == notification_id,
            notifications.c.status == NotificationStatus.SENDING.value,
            ~pending,
        )
        .values(status=NotificationStatus.COMPLETED.value, completed_at=now)
    )


async def plan_job_exists(conn: AsyncConnection, app_id: str, notification_id: str) -> bool:
    rows = await conn.execute(
        sa.select(jobs.c.payload).where(jobs.c.app_id == app_id, jobs.c.kind == PLAN_JOB)
    )
    return any(row.payload.get("notification_id") == notification_id for row in rows)
