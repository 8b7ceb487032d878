"""The planner's bulk write: one chunk's deliveries in a few statements.

The planner hands over deliveries grouped by what they share (platform,
status, reason, due time), and each group's device ids travel as one JSON
array that the database expands (`json_array_elements_text` on PostgreSQL,
`json_each` on SQLite), so nothing in Python touches a row: the ids are
encoded by the C JSON encoder. Through SQLAlchemy's `insert()` with a list
of dicts, every parameter of every row went through Python (bind
processors, `UtcDateTime`'s UTC conversion), a third of the planning time of
a large audience; an array per column bound by asyncpg still checked each
element in Python.

- PostgreSQL: one `INSERT ... SELECT` over `unnest` of the groups;
- SQLite: one `INSERT ... SELECT` per group (`executemany` over the groups).

Both store exactly what the `deliveries` table's types would: timestamps go
through `UtcDateTime`'s own bind processing for the dialect (once per
group), so the rows are the same as those `deliveries.insert()` writes (a
test compares them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.store.schema_pipeline import deliveries


@dataclass(frozen=True, slots=True)
class DeliveryGroup:
    """Devices of one platform planned alike: the same status, reason and due time."""

    platform: str
    status: str
    reason: str | None
    due_at: datetime | None
    device_ids: Sequence[str]


_COLUMNS = (
    "notification_id, device_id, app_id, platform, status, reason, attempts, due_at, updated_at"
)
_POSTGRES = (
    f"INSERT INTO deliveries ({_COLUMNS}) "  # noqa: S608 - fixed text, values are parameters
    "SELECT $1, d.device_id, $2, g.platform, g.status, g.reason, 0, g.due_at, $3 "
    "FROM unnest($4::text[], $5::varchar[], $6::varchar[], $7::varchar[], $8::timestamptz[])"
    " AS g(ids, platform, status, reason, due_at)"
    " CROSS JOIN LATERAL json_array_elements_text(g.ids::json) AS d(device_id)"
)
_SQLITE = (
    f"INSERT INTO deliveries ({_COLUMNS}) "  # noqa: S608 - fixed text, values are parameters
    "SELECT ?, value, ?, ?, ?, ?, 0, ?, ? FROM json_each(?)"
)


async def insert_deliveries(
    conn: AsyncConnection,
    notification_id: str,
    app_id: str,
    now: datetime,
    groups: Sequence[DeliveryGroup],
) -> int:
    """Insert the groups' deliveries (`attempts` 0, `updated_at` now); returns how many."""
    groups = [group for group in groups if group.device_ids]
    if not groups:
        return 0
    stamp = _stamper(conn.dialect)
    updated = stamp(now)
    ids = [json.dumps(group.device_ids) for group in groups]
    if conn.dialect.name == "postgresql":
        columns = (
            ids,
            [group.platform for group in groups],
            [group.status for group in groups],
            [group.reason for group in groups],
            [stamp(group.due_at) for group in groups],
        )
        await conn.exec_driver_sql(_POSTGRES, (notification_id, app_id, updated, *columns))
    else:
        rows = [
            (notification_id, app_id, g.platform, g.status, g.reason, stamp(g.due_at), updated, i)
            for g, i in zip(groups, ids, strict=True)
        ]
        await conn.exec_driver_sql(_SQLITE, rows)
    return sum(len(group.device_ids) for group in groups)


def _stamper(dialect: Dialect) -> Callable[[datetime | None], Any]:
    """`due_at`'s bind processing for this dialect: what the column type stores."""
    process = deliveries.c.due_at.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:  # pragma: no cover - UtcDateTime always processes
        return lambda moment: moment
    return process
