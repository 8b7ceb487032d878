"""The planner: fans a notification out into deliveries and send jobs, chunk by chunk.

Each chunk is one transaction that writes the chunk's deliveries, its send
jobs and the planner's progress (`planned_through`, the last device id)
together. A crash therefore loses at most an uncommitted chunk, and the plan
job — reclaimed by another worker when its lease expires — resumes from the
recorded progress. The progress update is a compare-and-set, so two planners
that both believe they own a notification cannot both write a chunk.

Within a chunk the audience is read a page at a time on a second, read-only
connection, and the work is pipelined: while one page's deliveries are being
inserted (the database busy) the next page is read and decided (this
process busy), so on a two-core machine the planner and the database work
side by side instead of taking turns. Only reads happen outside the chunk's
transaction; every write is inside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.delivery.chunk_plan import SEND_JOB as SEND_JOB
from clarion.delivery.chunk_plan import ChunkDecider, Throttle, send_jobs
from clarion.delivery.chunk_plan import job_due as job_due
from clarion.delivery.rules import NotificationRules
from clarion.model.app import App
from clarion.model.audience import Audience
from clarion.model.notification import NotificationSpec, parse_notification
from clarion.model.preferences import UserPreferences
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
from clarion.store.plan_writes import DeliveryGroup
from clarion.store.schema_pipeline import notifications
from clarion.store.users import preferences_for

PLAN_CHUNK = 20_000
"""Devices planned per transaction (what a crash can lose and has to redo)."""
PLAN_CHUNK_SQLITE = 10_000
"""On SQLite a chunk holds the database-wide write lock: about 0.1 s at this size."""
PLAN_PAGE = 5000
"""Devices read and decided at a time, pipelined with the previous page's insert."""
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
    claimed: list[queue.Job] | None = None
    """With a handover: the jobs claimed as the plan job finished (None: not finished)."""


async def plan_chunk(
    database: Database,
    app_id: str,
    notification_id: str,
    now: datetime,
    *,
    chunk: int | None = None,
    batch: int = SEND_BATCH,
    page: int = PLAN_PAGE,
    handover: queue.Handover | None = None,
) -> ChunkResult:
    """Plan the next chunk of the audience; `done` once the audience is exhausted.

    With a `handover`, the chunk that exhausts the audience also finishes the
    plan job and claims due jobs in its place (`ChunkResult.claimed`), in the
    same commit: a one-device notification goes from the API's answer to its
    push through one planning transaction, not two.
    """
    if chunk is None:
        chunk = PLAN_CHUNK_SQLITE if database.is_sqlite else PLAN_CHUNK
    async with database.write() as conn:
        record = await get_notification(conn, app_id, notification_id)
        if record is None or record.status in FINISHED_PLANNING:
            return ChunkResult(0, 0, True)
        if record.status is NotificationStatus.SCHEDULED:
            await _set(conn, notification_id, status=NotificationStatus.PLANNING.value)
        spec = load_spec(record)
        app = await get_app(conn, app_id)
        rules = _rules_for(record.id, app, spec) if app is not None else None
        throttle = Throttle(spec, record.plan_state)
        fanned = await _fan_out(
            database, conn, record, spec, rules, now, throttle, chunk=chunk, page=page
        )
        jobs = send_jobs(app_id, record.id, fanned.groups, now, batch)
        await queue.enqueue(conn, jobs, now)
        advanced = await _advance(
            conn, record, fanned.last, fanned.planned, fanned.exhausted, throttle.state
        )
        if not advanced:
            raise PlanConflict(notification_id)
        # With jobs just queued the notification has pending deliveries: not done yet.
        if fanned.exhausted and not jobs and await complete_if_done(conn, notification_id, now):
            await webhooks.emit_completed(conn, app_id, notification_id, now)
        claimed = None
        if fanned.exhausted and handover is not None:
            claimed = await queue.hand_over(conn, handover, now)
        queued = sum(len(job.payload["devices"]) for job in jobs)
        return ChunkResult(fanned.planned, queued, fanned.exhausted, claimed)


@dataclass(frozen=True, slots=True)
class FannedOut:
    """A chunk's deliveries, written: how many devices, the last one, whether that was all."""

    planned: int
    last: str | None
    exhausted: bool
    groups: list[DeliveryGroup]


async def _fan_out(
    database: Database,
    conn: AsyncConnection,
    record: NotificationRecord,
    spec: NotificationSpec,
    rules: NotificationRules | None,
    now: datetime,
    throttle: Throttle,
    *,
    chunk: int,
    page: int,
) -> FannedOut:
    """Read, decide and insert up to `chunk` devices, a page at a time, pipelined.

    At most one statement runs on each connection at a time: the reads on
    `reader`, the inserts (as a task, so the next page is decided while the
    database inserts this one) on `conn`, the chunk's own transaction.
    """
    groups: list[DeliveryGroup] = []
    planned, last = 0, record.planned_through
    decider = ChunkDecider(rules, now, throttle) if rules is not None else None
    writing: asyncio.Future[int] | None = None
    # The first page is read in the chunk's own transaction: when it is the whole
    # chunk (a small audience, a one-time code) there is no second connection to open.
    first = await _read_page(conn, record.app_id, spec, last, min(page, chunk), now)
    rows, prefs, asked = first
    if len(rows) < asked or len(rows) >= chunk:
        decided = decider.groups(rows, prefs) if decider is not None else []
        await plan_writes.insert_deliveries(conn, record.id, record.app_id, now, decided)
        return FannedOut(len(rows), rows[-1][0] if rows else last, len(rows) < asked, decided)
    reading: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    reading.set_result(first)
    async with database.read() as reader:
        try:
            while True:
                rows, prefs, asked = await reading
                planned += len(rows)
                last = rows[-1][0] if rows else last
                exhausted = len(rows) < asked
                more = not exhausted and planned < chunk
                if more:
                    limit = min(page, chunk - planned)
                    reading = asyncio.ensure_future(
                        _read_page(reader, record.app_id, spec, last, limit, now)
                    )
                decided = decider.groups(rows, prefs) if decider is not None else []
                groups.extend(decided)
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(
                    plan_writes.insert_deliveries(conn, record.id, record.app_id, now, decided)
                )
                await asyncio.sleep(0)  # the insert goes out before the next page is decided
                if not more:
                    await writing
                    return FannedOut(planned, last, exhausted, groups)
        finally:
            await _settle(reading, writing)


async def _read_page(
    reader: AsyncConnection,
    app_id: str,
    spec: NotificationSpec,
    after: str | None,
    limit: int,
    now: datetime,
) -> tuple[Sequence[Sequence[Any]], Mapping[str, UserPreferences], int]:
    """One page of the audience with its users' preferences, and the page size asked."""
    query = audience_page(app_id, spec.audience, after=after, limit=limit, now=now)
    rows: Sequence[Sequence[Any]] = (await reader.execute(query)).all()
    users = sorted({row[5] for row in rows if row[5] is not None})
    return rows, await preferences_for(reader, app_id, users), limit


async def _settle(*tasks: asyncio.Future[Any] | None) -> None:
    """Leave no statement running on a connection about to be released (on an error)."""
    pending = [task for task in tasks if task is not None and not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


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


def audience_of(record: NotificationRecord) -> Audience:
    return load_spec(record).audience
