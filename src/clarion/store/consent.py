"""The consent ledger: append and read, never update or delete.

The store offers no function that changes an event; the database refuses it
too (triggers from the first migration).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.consent import ConsentChange, ConsentEvent, RequestOrigin
from clarion.store.db import Database
from clarion.store.schema import consent_events

EXPORT_CHUNK = 1000


def _event(row: sa.Row[Any]) -> ConsentEvent:
    return ConsentEvent(
        id=row.id,
        app_id=row.app_id,
        device_id=row.device_id,
        platform=row.platform,
        subject_hash=row.subject_hash,
        old_status=row.old_status,
        new_status=row.new_status,
        source=row.source,
        text_version=row.text_version,
        client_time=row.client_time,
        server_time=row.server_time,
        ip=row.ip,
        user_agent=row.user_agent,
    )


async def append_event(
    conn: AsyncConnection,
    *,
    app_id: str,
    device_id: str,
    platform: str,
    subject: str | None,
    old_status: str | None,
    change: ConsentChange,
    origin: RequestOrigin,
    now: datetime,
) -> None:
    await conn.execute(
        consent_events.insert().values(
            app_id=app_id,
            device_id=device_id,
            platform=platform,
            subject_hash=subject,
            old_status=old_status,
            new_status=change.status.value,
            source=change.source,
            text_version=change.text_version,
            client_time=change.client_time,
            server_time=now,
            ip=origin.ip,
            user_agent=origin.user_agent[:512] if origin.user_agent else None,
        )
    )


async def device_history(conn: AsyncConnection, app_id: str, device_id: str) -> list[ConsentEvent]:
    rows = await conn.execute(
        consent_events.select()
        .where(consent_events.c.app_id == app_id, consent_events.c.device_id == device_id)
        .order_by(consent_events.c.id)
    )
    return [_event(row) for row in rows]


async def export_events(
    database: Database,
    app_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[ConsentEvent]:
    """Every event of the app in order, read in chunks so memory stays flat."""
    last_id = 0
    while True:
        query = (
            consent_events.select()
            .where(consent_events.c.app_id == app_id, consent_events.c.id > last_id)
            .order_by(consent_events.c.id)
            .limit(EXPORT_CHUNK)
        )
        if since is not None:
            query = query.where(consent_events.c.server_time >= since)
        if until is not None:
            query = query.where(consent_events.c.server_time < until)
        async with database.read() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            yield _event(row)
        if len(rows) < EXPORT_CHUNK:
            return
        last_id = rows[-1].id
