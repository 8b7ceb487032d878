"""The job queue, in the store: no separate broker.

A job is claimed by setting a lease (owner + expiry). PostgreSQL workers
claim with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on
each other; SQLite serializes writers (`BEGIN IMMEDIATE`), so the same
`UPDATE ... RETURNING` is atomic there. A job whose lease expired — its
worker died — is simply claimable again. Finishing a job deletes it only if
the caller still holds the lease, so a worker that lost its lease cannot
finish someone else's claim. Delayed work (retries, later `send_at`) is a job
with a later `due_at`.

A job may run more than once (a worker can die after sending and before
recording); handlers make a second run harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.store.db import Database
from clarion.store.schema_pipeline import jobs
from clarion.store.types import UtcDateTime


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    app_id: str
    payload: Mapping[str, Any]
    due_at: datetime
    attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: str
    app_id: str
    payload: Mapping[str, Any]
    due_at: datetime


def _job(row: sa.Row[Any]) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        app_id=row.app_id,
        payload=row.payload,
        due_at=row.due_at,
        attempts=row.attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


async def enqueue(conn: AsyncConnection, new_jobs: Iterable[NewJob], now: datetime) -> None:
    """Add jobs inside the caller's transaction (so they exist iff its change does)."""
    rows = [
        {
            "kind": job.kind,
            "app_id": job.app_id,
            "payload": dict(job.payload),
            "due_at": job.due_at,
            "attempts": 0,
            "created_at": now,
        }
        for job in new_jobs
    ]
    if rows:
        await conn.execute(jobs.insert(), rows)


async def claim(
    database: Database,
    owner: str,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    kinds: Sequence[str] | None = None,
) -> list[Job]:
    """Lease up to `limit` due jobs to `owner`, oldest due first.

    On SQLite the transaction runs whole in the writer thread (`write_sync`):
    through aiosqlite each of its statements hopped through a worker's busy
    event loop while holding the database-wide write lock (tens of ms a claim,
    the other worker's commits waiting behind it).
    """
    if database.is_sqlite:
        return await database.write_sync(
            lambda conn: claim_sync(conn, owner, now, lease=lease, limit=limit, kinds=kinds)
        )
    async with database.write() as conn:
        return await claim_in(conn, owner, now, lease=lease, limit=limit, kinds=kinds)


async def claim_in(
    conn: AsyncConnection,
    owner: str,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    kinds: Sequence[str] | None = None,
) -> list[Job]:
    """`claim` inside the caller's write transaction.

    A worker finishing one job claims the next in the same transaction, one
    commit instead of two on the way from a plan to its first push.
    """
    if limit <= 0:
        return []
    rows = (
        await conn.execute(_claim_statement(conn.dialect.name, owner, now, lease, limit, kinds))
    ).all()
    return sorted((_job(row) for row in rows), key=lambda job: (job.due_at, job.id))


def claim_sync(
    conn: sa.Connection,
    owner: str,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    kinds: Sequence[str] | None = None,
) -> list[Job]:
    """`claim_in` on a synchronous connection (`Database.write_sync`)."""
    if limit <= 0:
        return []
    rows = conn.execute(_claim_statement(conn.dialect.name, owner, now, lease, limit, kinds)).all()
    return sorted((_job(row) for row in rows), key=lambda job: (job.due_at, job.id))


def _claim_statement(
    dialect: str,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    kinds: Sequence[str] | None,
) -> sa.Executable:
    free = sa.or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now)
    candidates = (
        sa.select(jobs.c.id)
        .where(jobs.c.due_at <= now, free)
        .order_by(jobs.c.due_at, jobs.c.id)
        .limit(limit)
    )
    if kinds is not None:
        candidates = candidates.where(jobs.c.kind.in_(list(kinds)))
    if dialect != "sqlite":
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        jobs.update()
        .where(jobs.c.id.in_(candidates.scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=now + lease, attempts=jobs.c.attempts + 1)
        .returning(*jobs.c)
    )


@dataclass(frozen=True, slots=True)
class Handover:
    """A held job to finish, and what its owner may claim in its place."""

    job_id: int
    owner: str
    lease: timedelta
    limit: int
    kinds: Sequence[str]


async def hand_over(conn: AsyncConnection, handover: Handover, now: datetime) -> list[Job]:
    """Finish the held job and claim due jobs for its owner, in the caller's transaction."""
    await finish(conn, handover.job_id, handover.owner)
    return await claim_in(
        conn,
        handover.owner,
        now,
        lease=handover.lease,
        limit=handover.limit,
        kinds=handover.kinds,
    )


def _held(job_id: int, owner: str) -> sa.ColumnElement[bool]:
    return sa.and_(jobs.c.id == job_id, jobs.c.lease_owner == owner)


async def finish(conn: AsyncConnection, job_id: int, owner: str) -> bool:
    """Delete a finished job; False when the lease was lost meanwhile."""
    result = await conn.execute(jobs.delete().where(_held(job_id, owner)))
    return result.rowcount > 0


def finish_sync(conn: sa.Connection, job_id: int, owner: str) -> bool:
    """`finish` on a synchronous connection (inside `Database.write_sync`)."""
    return conn.execute(jobs.delete().where(_held(job_id, owner))).rowcount > 0


async def postpone(
    conn: AsyncConnection,
    job_id: int,
    owner: str,
    due_at: datetime,
    *,
    payload: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Give the job back, due again at `due_at` (optionally with a smaller payload)."""
    values: dict[str, Any] = {"due_at": due_at, "lease_owner": None, "lease_expires_at": None}
    if payload is not None:
        values["payload"] = dict(payload)
    if error is not None:
        values["last_error"] = error[:500]
    result = await conn.execute(jobs.update().where(_held(job_id, owner)).values(**values))
    return result.rowcount > 0


async def extend(database: Database, job_ids: Sequence[int], owner: str, until: datetime) -> int:
    """Keep leases alive while long jobs run (a heartbeat)."""
    if not job_ids:
        return 0
    async with database.write() as conn:
        result = await conn.execute(
            jobs.update()
            .where(jobs.c.id.in_(list(job_ids)), jobs.c.lease_owner == owner)
            .values(lease_expires_at=until)
        )
    return int(result.rowcount)


async def release(database: Database, job_ids: Sequence[int], owner: str) -> int:
    """Hand unfinished jobs back at once (graceful shutdown)."""
    if not job_ids:
        return 0
    async with database.write() as conn:
        result = await conn.execute(
            jobs.update()
            .where(jobs.c.id.in_(list(job_ids)), jobs.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
    return int(result.rowcount)


async def delete_for(conn: AsyncConnection, app_id: str, kind: str, key: str, value: str) -> None:
    """Remove queued jobs of one kind whose payload[key] is `value` (e.g. a cancelled plan)."""
    rows = await conn.execute(
        sa.select(jobs.c.id, jobs.c.payload).where(jobs.c.app_id == app_id, jobs.c.kind == kind)
    )
    doomed = [row.id for row in rows if row.payload.get(key) == value]
    if doomed:
        await conn.execute(jobs.delete().where(jobs.c.id.in_(doomed)))


@dataclass(frozen=True, slots=True)
class QueueDepth:
    due: int
    oldest_due_age: float
    leased: int


async def depth(conn: AsyncConnection, now: datetime) -> QueueDepth:
    due_filter = sa.and_(
        jobs.c.due_at <= now,
        sa.or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
    )
    row = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.min(jobs.c.due_at, type_=UtcDateTime)).where(
                due_filter
            )
        )
    ).one()
    leased = (
        await conn.execute(sa.select(sa.func.count()).where(jobs.c.lease_expires_at >= now))
    ).scalar_one()
    oldest: datetime | None = row[1]
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return QueueDepth(due=int(row[0]), oldest_due_age=age, leased=int(leased))
