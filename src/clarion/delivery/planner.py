"""The planner: fans a notification out into deliveries and send jobs, chunk by chunk.

Each chunk is one transaction that writes the chunk's deliveries, its send
jobs and the planner's progress (`planned_through`, the last device id)
together. A crash therefore loses at most an uncommitted chunk, and the plan
job — reclaimed by another worker when its lease expires — resumes from the
recorded progress. The progress update is a compare-and-set, so two planners
that both believe they own a notification cannot both write a chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.delivery.chunk_plan import SEND_JOB as SEND_JOB
from clarion.delivery.chunk_plan import Throttle, plan_groups, send_jobs
from clarion.delivery.chunk_plan import job_due as job_due
from clarion.delivery.rules import NotificationRules
from clarion.model.app import App
from clarion.model.audience import Audience
from clarion.model.notification import NotificationSpec, parse_notification
from clarion.store import plan_writes, queue, webhooks
from clarion.store.apps import get_app
from clarion.store.audience import audience_page
from clarion.store.db import Database
from clarion.store.notifications import (
    NotificationRecord,
    NotificationStatus,
    complete_if_done,
    get_notification,
)
from clarion.store.schema_pipeline import notifications
from clarion.store.users import preferences_for

PLAN_CHUNK = 5000
SEND_BATCH = 500


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


async def _write_chunk(
    conn: AsyncConnection,
    app_id: str,
    record: NotificationRecord,
    spec: NotificationSpec,
    page: Sequence[Sequence[Any]],
    now: datetime,
    batch: int,
    throttle: Throttle,
) -> int:
    app = await get_app(conn, app_id)
    if app is None:
        return 0
    rules = _rules_for(record.id, app, spec)
    prefs = await preferences_for(
        conn, app_id, sorted({row[5] for row in page if row[5] is not None})
    )
    groups = plan_groups(rules, page, prefs, now, throttle)
    await plan_writes.insert_deliveries(conn, record.id, app_id, now, groups)
    jobs = send_jobs(app_id, record.id, groups, now, batch)
    await queue.enqueue(conn, jobs, now)
    return sum(len(job.payload["devices"]) for job in jobs)


def audience_of(record: NotificationRecord) -> Audience:
    return load_spec(record).audience
