"""Frequency-cap bookkeeping: reserve a slot before sending, under a per-recipient lock.

A sender calls `reserve_many` for the recipients of a batch before pushing:
it locks their rows (in subject order, so two batches cannot deadlock),
reads what they were sent in the last week, asks the caller's `allows` (the
pure cap rule) for each and records the sends. A push that then does not go
out gives its slot back with `release`. The lock makes the check-and-record
atomic across workers.

Why a whole batch in a handful of statements rather than a few per
recipient: the write transaction is held meanwhile, and on SQLite that is
the database-wide write lock. Per-recipient round trips (each a thread hop
that waits for a busy event loop) held it for seconds per 500-device batch,
long enough for other writers to give up with "database is locked".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.store.schema_respect import cap_ledger, cap_locks

LOOKBACK = timedelta(days=7)

RecentSends = Sequence[tuple[str | None, datetime]]
"""(category, sent_at) of what a recipient got within the look-back window."""


def _insert(conn: AsyncConnection) -> object:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


async def _lock(conn: AsyncConnection, app_id: str, subjects: Sequence[str]) -> None:
    """Lock the subjects' rows, creating missing ones, in sorted order."""
    ordered = sorted(set(subjects))
    insert = _insert(conn)
    await conn.execute(
        insert(cap_locks)  # type: ignore[operator]
        .values([{"app_id": app_id, "subject": subject} for subject in ordered])
        .on_conflict_do_nothing(index_elements=["app_id", "subject"])
    )
    if conn.dialect.name == "postgresql":
        await conn.execute(
            sa.select(cap_locks.c.subject)
            .where(cap_locks.c.app_id == app_id, cap_locks.c.subject.in_(ordered))
            .order_by(cap_locks.c.subject)
            .with_for_update()
        )


Allows = Callable[[RecentSends], bool]


async def reserve_many(
    conn: AsyncConnection,
    *,
    app_id: str,
    wanted: Sequence[tuple[str, Allows]],
    notification_id: str,
    category: str | None,
    now: datetime,
) -> set[str]:
    """Record a send to each subject of `wanted` whose caps allow it; returns those that may go.

    `wanted` pairs a subject with its cap rule, in the order to decide them.
    A notification counts once per recipient: a second device of the same
    user in the same notification finds its slot already taken and may go.
    """
    if not wanted:
        return set()
    subjects = sorted({subject for subject, _ in wanted})
    await _lock(conn, app_id, subjects)
    rows = await conn.execute(
        sa.select(
            cap_ledger.c.subject,
            cap_ledger.c.notification_id,
            cap_ledger.c.category,
            cap_ledger.c.sent_at,
        ).where(
            cap_ledger.c.app_id == app_id,
            cap_ledger.c.subject.in_(subjects),
            cap_ledger.c.sent_at > now - LOOKBACK,
        )
    )
    recent: dict[str, list[tuple[str | None, datetime]]] = defaultdict(list)
    granted: set[str] = set()
    for row in rows:
        if row.notification_id == notification_id:
            granted.add(row.subject)
        recent[row.subject].append((row.category, row.sent_at))
    new: list[dict[str, object]] = []
    for subject, allows in wanted:
        if subject in granted or not allows(recent[subject]):
            continue
        granted.add(subject)
        new.append(
            {
                "app_id": app_id,
                "subject": subject,
                "notification_id": notification_id,
                "category": category,
                "sent_at": now,
            }
        )
    if new:
        await conn.execute(cap_ledger.insert(), new)
    return granted


async def reserve(
    conn: AsyncConnection,
    *,
    app_id: str,
    subject: str,
    notification_id: str,
    category: str | None,
    now: datetime,
    allows: Allows,
) -> bool:
    """Record a send to `subject` if the caps allow it; True when it may go."""
    granted = await reserve_many(
        conn,
        app_id=app_id,
        wanted=[(subject, allows)],
        notification_id=notification_id,
        category=category,
        now=now,
    )
    return subject in granted


async def release(
    conn: AsyncConnection, app_id: str, subjects: Sequence[str], notification_id: str
) -> None:
    """Give back the slots of recipients this notification did not reach after all."""
    if subjects:
        await conn.execute(
            cap_ledger.delete().where(
                cap_ledger.c.app_id == app_id,
                cap_ledger.c.notification_id == notification_id,
                cap_ledger.c.subject.in_(list(subjects)),
            )
        )


async def forget_before(conn: AsyncConnection, moment: datetime) -> None:
    """Drop ledger rows older than any cap window (housekeeping)."""
    await conn.execute(cap_ledger.delete().where(cap_ledger.c.sent_at < moment))
