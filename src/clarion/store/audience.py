"""An audience as a store query: the planner pages through it by device id.

Every form compiles to a `WHERE` over `devices` scoped to the app, so the
planner never holds the audience in memory. Saved segments and ad-hoc
filters compile through the same function once the filter language exists.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from clarion.model.audience import Audience, AudienceKind
from clarion.store.schema import device_topics, devices


class AudienceNotSupported(ValueError):
    """The audience form has no query yet."""


def audience_condition(app_id: str, audience: Audience) -> sa.ColumnElement[bool]:
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
    raise AudienceNotSupported(f"the {audience.kind.value} audience is not available yet")


def audience_page(
    app_id: str, audience: Audience, *, after: str | None, limit: int
) -> sa.Select[tuple[str, str, str, bool]]:
    """One keyset page of the audience: (id, platform, consent, active), by device id."""
    query = sa.select(devices.c.id, devices.c.platform, devices.c.consent, devices.c.active).where(
        audience_condition(app_id, audience)
    )
    if after is not None:
        query = query.where(devices.c.id > after)
    return query.order_by(devices.c.id).limit(limit)


def audience_count(app_id: str, audience: Audience) -> sa.Select[Any]:
    return (
        sa.select(sa.func.count()).select_from(devices).where(audience_condition(app_id, audience))
    )
