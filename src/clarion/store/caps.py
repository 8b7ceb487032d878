"""Frequency-cap bookkeeping: reserve a slot before sending, under a per-recipient lock.

A sender calls `reserve` for each recipient of a batch before pushing: it
locks the recipient's row, reads what they were sent in the last week, asks
the caller's `allows` (the pure cap rule) and records the send. A push that
then does not go out gives its slot back with `release`. The lock makes the
check-and-record atomic across workers.
"""

from __future__ import annotations

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


async def _lock(conn: AsyncConnection, app_id: str, subject: str) -> None:
    insert = _insert(conn)
    await conn.execute(
        insert(cap_locks)  # type: ignore[operator]
        .values(app_id=app_id, subject=subject)
        .on_conflict_do_nothing(index_elements=["app_id", "subject"])
    )
    query = sa.select(cap_locks.c.subject).where(
        cap_locks.c.app_id == app_id, cap_locks.c.subject == subject
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    await conn.execute(query)


async def reserve(
    conn: AsyncConnection,
    *,
    app_id: str,
    subject: str,
    notification_id: str,
    category: str | None,
    now: datetime,
    allows: Callable[[RecentSends], bool],
) -> bool:
    """Record a send to `subject` if the caps allow it; True when it may go.

    A notification counts once per recipient: a second device of the same
    user in the same notification finds its slot already taken and may go.
    """
    await _lock(conn, app_id, subject)
    rows = (
        await conn.execute(
            sa.select(
                cap_ledger.c.notification_id, cap_ledger.c.category, cap_ledger.c.sent_at
            ).where(
                cap_ledger.c.app_id == app_id,
                cap_ledger.c.subject == subject,
                cap_ledger.c.sent_at > now - LOOKBACK,
            )
        )
    ).all()
    if any(row.notification_id == notification_id for row in rows):
        return True
    if not allows([(row.category, row.sent_at) for row in rows]):
        return False
    await conn.execute(
        cap_ledger.insert().values(
            app_id=app_id,
            subject=subject,
            notification_id=notification_id,
            category=category,
            sent_at=now,
        )
    )
    return True


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
