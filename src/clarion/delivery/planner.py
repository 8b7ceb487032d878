"""The planner: fans a notification out into deliveries and send jobs, chunk by chunk.

Each chunk is one transaction that writes the chunk's deliveries, its send
jobs and the planner's progress (`planned_through`, the last device id)
together. A crash therefore loses at most an uncommitted chunk, and the plan
job — reclaimed by another worker when its lease expires — resumes from the
recorded progress. The progress update is a compare-and-set, so two planners
that both believe they own a notification cannot both write a chunk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.delivery.rules import Decision, NotificationRules, RecipientFacts
from clarion.model.app import App
from clarion.model.audience import Audience
from clarion.model.notification import NotificationSpec, parse_notification
from clarion.model.schedule import PlanStatus
from clarion.store import queue, webhooks
from clarion.store.apps import get_app
from clarion.store.audience import audience_page
from clarion.store.db import Database
from clarion.store.notifications import (
    DeliveryStatus,
    NotificationRecord,
    NotificationStatus,
    complete_if_done,
    get_notification,
)
from clarion.store.schema_pipeline import deliveries, notifications
from clarion.store.users import preferences_for

PLAN_CHUNK = 5000
SEND_BATCH = 500
SEND_JOB = "send"


def load_spec(record: NotificationRecord) -> NotificationSpec:
    """The stored spec as domain values (it was validated when accepted)."""
    return parse_notification(record.spec, record.created_at)


FINISHED_PLANNING = (
    NotificationStatus.SENDING,
    NotificationStatus.COMPLETED,
    NotificationStatus.CANCELLED,
)


@dataclass(frozen=True, slots=True)
class ChunkResult:
    planned: int
    queued: int
    done: bool


async def plan_chunk(
    database: Database,
    app_id: str,
    notification_id: str,
    now: datetime,
    *,
    chunk: int = PLAN_CHUNK,
    batch: int = SEND_BATCH,
) -> ChunkResult:
    """Plan the next chunk of the audience; `done` once the audience is exhausted."""
    async with database.write() as conn:
        record = await get_notification(conn, app_id, notification_id)
        if record is None or record.status in FINISHED_PLANNING:
            return ChunkResult(0, 0, True)
        if record.status is NotificationStatus.SCHEDULED:
            await _set(conn, notification_id, status=NotificationStatus.PLANNING.value)
        spec = load_spec(record)
        page = (
            await conn.execute(
                audience_page(
                    app_id, spec.audience, after=record.planned_through, limit=chunk, now=now
                )
            )
        ).all()
        throttle = Throttle(spec, record.plan_state)
        queued = await _write_chunk(conn, app_id, record, spec, page, now, batch, throttle)
        done = len(page) < chunk
        advanced = await _advance(
            conn, record, page[-1].id if page else None, len(page), done, throttle.state
        )
        if not advanced:
            raise PlanConflict(notification_id)
        if done and await complete_if_done(conn, notification_id, now):
            await webhooks.emit_completed(conn, app_id, notification_id, now)
        return ChunkResult(len(page), queued, done)


class PlanConflict(RuntimeError):
    """Another planner advanced this notification first; this chunk was rolled back."""


async def _set(conn: AsyncConnection, notification_id: str, **values: Any) -> None:
    await conn.execute(
        notifications.update().where(notifications.c.id == notification_id).values(**values)
    )


async def _advance(
    conn: AsyncConnection,
    record: NotificationRecord,
    last: str | None,
    count: int,
    done: bool,
    state: dict[str, int] | None,
) -> bool:
    progress = (
        notifications.c.planned_through.is_(None)
        if record.planned_through is None
        else notifications.c.planned_through == record.planned_through
    )
    values: dict[str, Any] = {"targeted": notifications.c.targeted + count}
    if state is not None:
        values["plan_state"] = {"throttle": state}
    if last is not None:
        values["planned_through"] = last
    if done:
        values["status"] = NotificationStatus.SENDING.value
    result = await conn.execute(
        notifications.update().where(notifications.c.id == record.id, progress).values(**values)
    )
    return result.rowcount > 0


async def _recipients(
    conn: AsyncConnection, app_id: str, page: Sequence[sa.Row[Any]]
) -> list[RecipientFacts]:
    """The chunk's devices with their user's preferences (one query for the whole chunk)."""
    users = sorted({row.user_id for row in page if row.user_id})
    prefs = await preferences_for(conn, app_id, users)
    return [
        RecipientFacts(
            device_id=row.id,
            consent=row.consent,
            active=row.active,
            timezone=row.timezone,
            user_id=row.user_id,
            preferences=prefs.get(row.user_id) if row.user_id else None,
        )
        for row in page
    ]


_RULES: dict[tuple[str, datetime], NotificationRules] = {}


def _rules_for(notification_id: str, app: App, spec: NotificationSpec) -> NotificationRules:
    """The same rules (and decision memo) for every chunk of one plan, until the app changes."""
    key = (notification_id, app.updated_at)
    rules = _RULES.get(key)
    if rules is None:
        if len(_RULES) >= 32:
            _RULES.clear()
        rules = _RULES[key] = NotificationRules(app, spec)
    return rules


class Throttle:
    """Spreads a campaign to at most `throttle_per_minute` sends a minute, per wave.

    A wave is the deliveries due at the same time: the immediate send, or
    one time zone's local-time slot, so a throttled local-time campaign is
    throttled within each zone's wave. The counts live in the notification's
    `plan_state`, written with each chunk, so a resumed planner continues them.
    """

    def __init__(self, spec: NotificationSpec, saved: Mapping[str, Any] | None) -> None:
        self.per_minute = spec.schedule.throttle_per_minute
        self.send_at = spec.schedule.send_at
        self.state: dict[str, int] | None = (
            dict((saved or {}).get("throttle", {})) if self.per_minute else None
        )

    def spread(self, decision: Decision, now: datetime) -> Decision:
        if self.state is None or self.per_minute is None or decision.due_at is None:
            return decision
        wave = self.send_at if decision.due_at <= now else job_due(decision.due_at, now)
        key = wave.isoformat()
        position = self.state.get(key, 0)
        self.state[key] = position + 1
        due = max(decision.due_at, wave + timedelta(minutes=position // self.per_minute))
        status = PlanStatus.SCHEDULED if due > now else decision.status
        return Decision(status, decision.reason, due)


def job_due(due: datetime, now: datetime) -> datetime:
    """When the job carrying a delivery due at `due` runs: at once, or on the next minute.

    Rounding up, never down, keeps a delivery from going before its time
    (the end of someone's quiet hours); grouping by minute keeps a local-time
    campaign to a few jobs per time zone instead of one per device.
    """
    if due <= now:
        return now
    rounded = due.replace(second=0, microsecond=0)
    return rounded if rounded == due else rounded + timedelta(minutes=1)


async def _write_chunk(
    conn: AsyncConnection,
    app_id: str,
    record: NotificationRecord,
    spec: NotificationSpec,
    page: Sequence[sa.Row[Any]],
    now: datetime,
    batch: int,
    throttle: Throttle,
) -> int:
    app = await get_app(conn, app_id)
    if app is None:
        return 0
    rules = _rules_for(record.id, app, spec)
    rows = []
    groups: dict[tuple[str, datetime], list[str]] = defaultdict(list)
    platforms = {row.id: row.platform for row in page}
    for recipient in await _recipients(conn, app_id, page):
        decision = throttle.spread(rules.decide(recipient, now), now)
        status = _STATUS[decision.status]
        rows.append(
            {
                "notification_id": record.id,
                "device_id": recipient.device_id,
                "app_id": app_id,
                "platform": platforms[recipient.device_id],
                "status": status.value,
                "reason": decision.reason,
                "attempts": 0,
                "due_at": decision.due_at,
                "updated_at": now,
            }
        )
        if decision.due_at is not None:
            key = (platforms[recipient.device_id], job_due(decision.due_at, now))
            groups[key].append(recipient.device_id)
    if rows:
        await conn.execute(deliveries.insert(), rows)
    jobs = [
        queue.NewJob(
            SEND_JOB,
            app_id,
            {"notification_id": record.id, "platform": platform, "devices": ids[i : i + batch]},
            due,
        )
        for (platform, due), ids in groups.items()
        for i in range(0, len(ids), batch)
    ]
    await queue.enqueue(conn, jobs, now)
    return sum(len(ids) for ids in groups.values())


_STATUS = {
    PlanStatus.DUE: DeliveryStatus.QUEUED,
    PlanStatus.SCHEDULED: DeliveryStatus.SCHEDULED,
    PlanStatus.SUPPRESSED: DeliveryStatus.SUPPRESSED,
    PlanStatus.EXPIRED: DeliveryStatus.EXPIRED,
}


def audience_of(record: NotificationRecord) -> Audience:
    return load_spec(record).audience
