"""Bulk tag changes: set, merge or remove tags on every device an audience selects.

The audience is walked in keyset pages by device id, one transaction per
page, so a change to a million devices never holds them in memory nor the
SQLite write lock for long. Each operation is idempotent: after a failure
half way, repeating the request finishes the job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from clarion.model.audience import Audience
from clarion.model.device import MAX_TAGS
from clarion.store.audience import audience_condition
from clarion.store.db import Database
from clarion.store.schema import devices

PAGE = 1000


@dataclass(frozen=True, slots=True)
class TagChange:
    """`set` replaces the whole map; otherwise `merge` adds/overwrites and `remove` deletes."""

    set: Mapping[str, str] | None = None
    merge: Mapping[str, str] = field(default_factory=dict)
    remove: Sequence[str] = ()

    def apply(self, tags: Mapping[str, str]) -> dict[str, str]:
        result = dict(self.set) if self.set is not None else dict(tags)
        result.update(self.merge)
        for name in self.remove:
            result.pop(name, None)
        return result


@dataclass(slots=True)
class TagResult:
    matched: int = 0
    updated: int = 0
    over_limit: int = 0
    """Devices left unchanged because the change would give them more than MAX_TAGS tags."""


async def change_tags(
    database: Database, app_id: str, audience: Audience, change: TagChange, now: datetime
) -> TagResult:
    result = TagResult()
    condition = audience_condition(app_id, audience, now=now)
    after: str | None = None
    while True:
        async with database.write() as conn:
            query = sa.select(devices.c.id, devices.c.tags).where(condition)
            if after is not None:
                query = query.where(devices.c.id > after)
            page = (await conn.execute(query.order_by(devices.c.id).limit(PAGE))).all()
            updates = []
            for row in page:
                new = change.apply(row.tags or {})
                if len(new) > MAX_TAGS:
                    result.over_limit += 1
                elif new != (row.tags or {}):
                    updates.append({"device": row.id, "new_tags": new})
            if updates:
                await conn.execute(
                    devices.update()
                    .where(devices.c.app_id == app_id, devices.c.id == sa.bindparam("device"))
                    .values(
                        tags=sa.bindparam("new_tags", type_=devices.c.tags.type), updated_at=now
                    ),
                    updates,
                )
        result.matched += len(page)
        result.updated += len(updates)
        if len(page) < PAGE:
            return result
        after = page[-1].id
