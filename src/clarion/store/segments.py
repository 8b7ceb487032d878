"""Saved segments: a named filter expression per app, and resolving a segment audience.

A segment stores its filter as the canonical text (`print_filter` of the
parsed AST), so what the API shows is what the store runs. A notification
sent to a segment carries a snapshot of the filter (see `resolve_audience`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.audience import Audience, AudienceKind
from clarion.model.ids import new_id
from clarion.store.audience import audience_count
from clarion.store.schema import segments


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    app_id: str
    name: str
    filter: str
    created_at: datetime
    updated_at: datetime


class SegmentNameTaken(ValueError):
    """Another segment of the app already has this name."""


def _segment(row: sa.Row[Any]) -> Segment:
    return Segment(row.id, row.app_id, row.name, row.filter, row.created_at, row.updated_at)


async def create_segment(
    conn: AsyncConnection, app_id: str, name: str, text: str, now: datetime
) -> Segment:
    """Store a segment; `text` is an already validated, canonical filter."""
    segment_id = new_id("seg")
    try:
        async with conn.begin_nested():
            await conn.execute(
                segments.insert().values(
                    id=segment_id,
                    app_id=app_id,
                    name=name,
                    filter=text,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError as exc:
        raise SegmentNameTaken(name) from exc
    return Segment(segment_id, app_id, name, text, now, now)


async def get_segment(conn: AsyncConnection, app_id: str, segment_id: str) -> Segment | None:
    row = (
        await conn.execute(
            segments.select().where(segments.c.app_id == app_id, segments.c.id == segment_id)
        )
    ).first()
    return _segment(row) if row else None


async def list_segments(
    conn: AsyncConnection, app_id: str, *, after: str | None, limit: int
) -> list[Segment]:
    query = segments.select().where(segments.c.app_id == app_id)
    if after is not None:
        query = query.where(segments.c.id > after)
    rows = await conn.execute(query.order_by(segments.c.id).limit(limit))
    return [_segment(row) for row in rows]


async def update_segment(
    conn: AsyncConnection,
    app_id: str,
    segment_id: str,
    now: datetime,
    *,
    name: str | None = None,
    text: str | None = None,
) -> Segment | None:
    values: dict[str, Any] = {"updated_at": now}
    if name is not None:
        values["name"] = name
    if text is not None:
        values["filter"] = text
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                segments.update()
                .where(segments.c.app_id == app_id, segments.c.id == segment_id)
                .values(**values)
            )
    except IntegrityError as exc:
        raise SegmentNameTaken(name or "") from exc
    if result.rowcount == 0:
        return None
    return await get_segment(conn, app_id, segment_id)


async def delete_segment(conn: AsyncConnection, app_id: str, segment_id: str) -> bool:
    result = await conn.execute(
        segments.delete().where(segments.c.app_id == app_id, segments.c.id == segment_id)
    )
    return result.rowcount > 0


async def resolve_audience(conn: AsyncConnection, app_id: str, audience: Audience) -> Audience:
    """A segment audience with its current filter attached; other forms unchanged.

    Raises `LookupError` when the segment does not exist in this app.
    """
    if audience.kind is not AudienceKind.SEGMENT:
        return audience
    segment = await get_segment(conn, app_id, audience.values[0])
    if segment is None:
        raise LookupError(audience.values[0])
    return Audience(AudienceKind.SEGMENT, (segment.id, segment.filter))


async def count_audience(
    conn: AsyncConnection, app_id: str, audience: Audience, now: datetime
) -> int:
    """The number of devices in a (resolved) audience, measured at `now`."""
    return int((await conn.execute(audience_count(app_id, audience, now=now))).scalar_one())
