"""The per-device delivery log of a notification."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.store.notifications import DeliveryStatus, NotificationRecord, NotificationStatus
from clarion.store.schema_pipeline import deliveries
from clarion.store.types import UtcDateTime

EVENT_COLUMNS = {"received": "received_at", "opened": "opened_at", "dismissed": "dismissed_at"}


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    notification_id: str
    device_id: str
    platform: str
    status: DeliveryStatus
    reason: str | None
    attempts: int
    provider_message_id: str | None
    due_at: datetime | None
    sent_at: datetime | None
    received_at: datetime | None
    opened_at: datetime | None
    dismissed_at: datetime | None
    updated_at: datetime


def _record(row: sa.Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        notification_id=row.notification_id,
        device_id=row.device_id,
        platform=row.platform,
        status=DeliveryStatus(row.status),
        reason=row.reason,
        attempts=row.attempts,
        provider_message_id=row.provider_message_id,
        due_at=row.due_at,
        sent_at=row.sent_at,
        received_at=row.received_at,
        opened_at=row.opened_at,
        dismissed_at=row.dismissed_at,
        updated_at=row.updated_at,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def delivery_json(item: DeliveryRecord) -> dict[str, Any]:
    return {
        "device_id": item.device_id,
        "platform": item.platform,
        "status": item.status.value,
        "reason": item.reason,
        "attempts": item.attempts,
        "provider_message_id": item.provider_message_id,
        "due_at": _iso(item.due_at),
        "sent_at": _iso(item.sent_at),
        "received_at": _iso(item.received_at),
        "opened_at": _iso(item.opened_at),
        "dismissed_at": _iso(item.dismissed_at),
    }


async def list_deliveries(
    conn: AsyncConnection,
    app_id: str,
    notification_id: str,
    *,
    status: DeliveryStatus | None,
    after: str | None,
    limit: int,
) -> list[DeliveryRecord]:
    query = deliveries.select().where(
        deliveries.c.app_id == app_id, deliveries.c.notification_id == notification_id
    )
    if status is not None:
        query = query.where(deliveries.c.status == status.value)
    if after is not None:
        query = query.where(deliveries.c.device_id > after)
    rows = await conn.execute(query.order_by(deliveries.c.device_id).limit(limit))
    return [_record(row) for row in rows]


async def get_delivery(
    conn: AsyncConnection, app_id: str, notification_id: str, device_id: str
) -> DeliveryRecord | None:
    row = (
        await conn.execute(
            deliveries.select().where(
                deliveries.c.app_id == app_id,
                deliveries.c.notification_id == notification_id,
                deliveries.c.device_id == device_id,
            )
        )
    ).first()
    return _record(row) if row else None


async def record_event(
    conn: AsyncConnection,
    app_id: str,
    notification_id: str,
    device_id: str,
    kind: str,
    now: datetime,
) -> bool:
    """Set the event's time once; False when there is no such delivery."""
    column = deliveries.c[EVENT_COLUMNS[kind]]
    where = (
        deliveries.c.app_id == app_id,
        deliveries.c.notification_id == notification_id,
        deliveries.c.device_id == device_id,
    )
    found = (await conn.execute(sa.select(column).where(*where))).first()
    if found is None:
        return False
    if found[0] is None:
        await conn.execute(deliveries.update().where(*where).values({column.name: now}))
    return True


class Final(NamedTuple):
    """Where a pending delivery ends: its status, why, the service's id, whether it was tried."""

    device_id: str
    status: str
    reason: str | None
    provider_id: str | None
    tried: int
    """1 when a push went out for it (an attempt), else 0."""


_FINALS_POSTGRES = sa.text(
    """
    UPDATE deliveries AS d
    SET status = v.status, reason = v.reason, provider_message_id = v.provider_id,
        sent_at = CASE WHEN v.status = 'sent' THEN CAST(:now AS timestamptz) END,
        attempts = d.attempts + v.tried, updated_at = :now
    FROM (
        SELECT e->>0 AS notification_id, e->>1 AS device_id, e->>2 AS status,
               e->>3 AS reason, e->>4 AS provider_id, CAST(e->>5 AS integer) AS tried
        FROM json_array_elements(CAST(:rows AS json)) AS e
    ) AS v
    WHERE d.notification_id = v.notification_id AND d.device_id = v.device_id
      AND d.status NOT IN ('sent', 'failed', 'suppressed', 'expired', 'cancelled')
    """
).bindparams(sa.bindparam("now", type_=UtcDateTime))
"""The rows arrive as one JSON array whose elements carry the notification id too, and
"pending" is written as "no final status": with no constant on `deliveries` and no
indexable status test, the only cheap plan is a primary-key probe per row, whatever the
statistics say. Given `notification_id = :id AND status IN (...)`, PostgreSQL with stale
or skewed statistics (a fresh store, a campaign planned faster than autovacuum analyzes)
read every pending delivery of the notification per batch: quadratic in the audience."""
_FINALS_SQLITE = (
    "UPDATE deliveries SET status = ?, reason = ?, provider_message_id = ?, sent_at = ?,"
    " attempts = attempts + ?, updated_at = ?"
    " WHERE notification_id = ? AND device_id = ? AND status IN ('scheduled', 'queued')"
)


async def record_finals(
    conn: AsyncConnection, notification_id: str, finals: Sequence[Final], now: datetime
) -> None:
    """Move pending deliveries to their final status, all in one statement or one executemany.

    Why: a send job ends hundreds of deliveries at once. On PostgreSQL the
    rows travel as one JSON array (one statement, one round trip, a plan
    that holds on any statistics: see `_FINALS_POSTGRES`); on SQLite the
    driver's `executemany` runs one prepared statement per row in C. Either
    way SQLAlchemy processes no parameter per row. Deliveries no longer
    pending (another run ended them) are left as they are; `sent_at` is
    `now` for the sent, cleared otherwise.
    """
    if not finals:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(_FINALS_POSTGRES, _postgres_finals(notification_id, finals, now))
    else:
        await conn.exec_driver_sql(
            _FINALS_SQLITE, _sqlite_finals(conn, notification_id, finals, now)
        )


def record_finals_sync(
    conn: sa.Connection, notification_id: str, finals: Sequence[Final], now: datetime
) -> None:
    """`record_finals` on a synchronous connection (inside `Database.write_sync`)."""
    if not finals:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_FINALS_POSTGRES, _postgres_finals(notification_id, finals, now))
    else:
        conn.exec_driver_sql(_FINALS_SQLITE, _sqlite_finals(conn, notification_id, finals, now))


def _postgres_finals(
    notification_id: str, finals: Sequence[Final], now: datetime
) -> dict[str, Any]:
    rows = [
        (notification_id, f.device_id, f.status, f.reason, f.provider_id, f.tried) for f in finals
    ]
    return {"now": now, "rows": json.dumps(rows)}


def _sqlite_finals(
    conn: AsyncConnection | sa.Connection,
    notification_id: str,
    finals: Sequence[Final],
    now: datetime,
) -> list[tuple[Any, ...]]:
    stored_now = _stored_datetime(conn, now)
    sent = DeliveryStatus.SENT.value
    return [
        (
            f.status,
            f.reason,
            f.provider_id,
            stored_now if f.status == sent else None,
            f.tried,
            stored_now,
            notification_id,
            f.device_id,
        )
        for f in finals
    ]


def _stored_datetime(conn: AsyncConnection | sa.Connection, moment: datetime) -> Any:
    """`moment` as the driver stores it for a `UtcDateTime` column (SQLAlchemy's own processor)."""
    dialect = conn.dialect
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    return process(moment) if process is not None else moment


_REASONS = {
    "no_consent": "the device has no opt-in consent (granted or provisional)",
    "inactive_device": "the device is deactivated (dead token, or switched off)",
    "device_deleted": "the device was deleted or its user erased before the push went",
    "category_opt_out": "the recipient opted out of this category",
    "frequency_cap": "the recipient reached a frequency cap",
    "quiet_hours": "it fell in the recipient's quiet hours and the notification said drop",
    "invalid_token": "the push service said the token is dead; the device was deactivated",
    "provider_not_configured": "the app has no credentials for this platform",
    "ttl": "its time to live ran out before it could be delivered",
}


def explain(item: DeliveryRecord, record: NotificationRecord) -> str:
    """A sentence a person can read: why this delivery is where it is."""
    reason = _REASONS.get((item.reason or "").split(":")[0], item.reason or "")
    match item.status:
        case DeliveryStatus.SENT:
            return f"Sent at {_iso(item.sent_at)} after {item.attempts} attempt(s)."
        case DeliveryStatus.QUEUED:
            last = f" The last attempt said: {item.reason}." if item.reason else ""
            return f"Queued, due at {_iso(item.due_at)}; {item.attempts} attempt(s) so far.{last}"
        case DeliveryStatus.SCHEDULED:
            return f"Scheduled for {_iso(item.due_at)} in the recipient's time."
        case DeliveryStatus.SUPPRESSED:
            return f"Not sent: {reason}."
        case DeliveryStatus.FAILED:
            return f"Failed: {reason or item.reason}."
        case DeliveryStatus.EXPIRED:
            return f"Expired: not delivered before {_iso(record.expires_at)}."
        case DeliveryStatus.CANCELLED:
            return "Cancelled before it was sent."
    return item.status.value


__all__ = [
    "Final",
    "NotificationStatus",
    "delivery_json",
    "explain",
    "get_delivery",
    "list_deliveries",
    "record_finals",
    "record_finals_sync",
]
