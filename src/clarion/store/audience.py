"""An audience as a store query: the planner pages through it by device id.

Every form compiles to a `WHERE` over `devices` scoped to the app, so the
planner never holds the audience in memory. `filter` and `segment` go
through the same compiled path (`clarion.store.filter_sql`); a segment
audience must carry its filter text, which `store.segments.resolve_audience`
fills in when a notification is accepted (so editing the segment later does
not change an audience already being planned).

`now` is the instant `now - 30d` in a filter is measured from: callers pass
their injected clock's reading (the planner should pass its planning time).
Without it the system clock is read, which is right in production but not
under a test's fake clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from clarion.model.audience import Audience, AudienceKind
from clarion.model.filter import parse_filter
from clarion.store.filter_sql import filter_condition
from clarion.store.schema import device_topics, devices


class AudienceNotSupported(ValueError):
    """The audience form cannot be queried as given (an unresolved segment)."""


def audience_condition(
    app_id: str, audience: Audience, *, now: datetime | None = None
) -> sa.ColumnElement[bool]:
    """The condition on `devices` selecting the audience's devices in `app_id`."""
    scoped = devices.c.app_id == app_id
    match audience.kind:
        case AudienceKind.ALL:
            return scoped
        case AudienceKind.DEVICES:
            return sa.and_(scoped, devices.c.id.in_(list(audience.values)))
        case AudienceKind.USERS:
            return sa.and_(scoped, devices.c.user_id.in_(list(audience.values)))
        case AudienceKind.TOPIC:
            subscribed = sa.select(device_topics.c.device_id).where(
                device_topics.c.app_id == app_id, device_topics.c.topic == audience.values[0]
            )
            return sa.and_(scoped, devices.c.id.in_(subscribed))
        case AudienceKind.FILTER:
            return filter_condition(app_id, parse_filter(audience.values[0]), now=_now(now))
        case AudienceKind.SEGMENT if len(audience.values) == 2:
            return filter_condition(app_id, parse_filter(audience.values[1]), now=_now(now))
    raise AudienceNotSupported(
        f"the {audience.kind.value} audience needs resolving first (store.segments)"
    )


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def audience_page(
    app_id: str,
    audience: Audience,
    *,
    after: str | None,
    limit: int,
    now: datetime | None = None,
) -> sa.Select[tuple[str, str, str, bool, str | None, str | None]]:
    """One keyset page of the audience by device id: what planning a device needs
    (id, platform, consent, active, timezone, user_id)."""
    query = sa.select(
        devices.c.id,
        devices.c.platform,
        devices.c.consent,
        devices.c.active,
        devices.c.timezone,
        devices.c.user_id,
    ).where(audience_condition(app_id, audience, now=now))
    if after is not None:
        query = query.where(devices.c.id > after)
    return query.order_by(devices.c.id).limit(limit)


def audience_count(
    app_id: str, audience: Audience, *, now: datetime | None = None
) -> sa.Select[Any]:
    """How many devices the audience holds (whatever their consent)."""
    return (
        sa.select(sa.func.count())
        .select_from(devices)
        .where(audience_condition(app_id, audience, now=now))
    )
