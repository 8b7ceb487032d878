"""Topic subscriptions: which devices follow which interest lists."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.store.schema import device_topics


async def subscribe(
    conn: AsyncConnection, app_id: str, device_id: str, topic: str, now: datetime
) -> bool:
    """Subscribe; True when it is new (subscribing twice is harmless)."""
    exists = (
        await conn.execute(
            sa.select(sa.literal(1)).where(
                device_topics.c.app_id == app_id,
                device_topics.c.device_id == device_id,
                device_topics.c.topic == topic,
            )
        )
    ).first()
    if exists:
        return False
    await conn.execute(
        device_topics.insert().values(
            app_id=app_id, device_id=device_id, topic=topic, created_at=now
        )
    )
    return True


async def unsubscribe(conn: AsyncConnection, app_id: str, device_id: str, topic: str) -> bool:
    result = await conn.execute(
        device_topics.delete().where(
            device_topics.c.app_id == app_id,
            device_topics.c.device_id == device_id,
            device_topics.c.topic == topic,
        )
    )
    return result.rowcount > 0


async def device_topic_names(conn: AsyncConnection, app_id: str, device_id: str) -> list[str]:
    rows = await conn.execute(
        sa.select(device_topics.c.topic)
        .where(device_topics.c.app_id == app_id, device_topics.c.device_id == device_id)
        .order_by(device_topics.c.topic)
    )
    return [row.topic for row in rows]
