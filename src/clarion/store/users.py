"""Users' preferences, and erasure of a user's personal data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.preferences import UserPreferences, parse_caps, parse_quiet_hours
from clarion.store.schema import devices, users


async def get_preferences(
    conn: AsyncConnection, app_id: str, user_id: str
) -> UserPreferences | None:
    row = (
        await conn.execute(
            users.select().where(users.c.app_id == app_id, users.c.user_id == user_id)
        )
    ).first()
    return _preferences(row) if row is not None else None


def _preferences(row: sa.Row[*tuple[Any, ...]]) -> UserPreferences:
    quiet = row.quiet_hours
    return UserPreferences(
        categories=row.categories or {},
        quiet_hours=parse_quiet_hours(quiet.get("window")) if quiet else None,
        quiet_hours_set=quiet is not None,
        timezone=row.timezone,
        caps=parse_caps(row.caps) if row.caps is not None else None,
    )


async def put_preferences(
    conn: AsyncConnection, app_id: str, user_id: str, prefs: UserPreferences, now: datetime
) -> None:
    """Store the user's whole preference set (a PUT replaces it)."""
    values: dict[str, Any] = {
        "categories": dict(prefs.categories),
        "quiet_hours": (
            {"window": prefs.quiet_hours.as_json() if prefs.quiet_hours else None}
            if prefs.quiet_hours_set
            else None
        ),
        "timezone": prefs.timezone,
        "caps": [cap.as_json() for cap in prefs.caps] if prefs.caps is not None else None,
        "updated_at": now,
    }
    result = await conn.execute(
        users.update().where(users.c.app_id == app_id, users.c.user_id == user_id).values(**values)
    )
    if result.rowcount == 0:
        await conn.execute(
            users.insert().values(app_id=app_id, user_id=user_id, created_at=now, **values)
        )


async def erase_user(conn: AsyncConnection, app_id: str, user_id: str) -> int:
    """Delete the user's devices (tokens, tags, topics) and preferences.

    Consent events stay: they never held the user id, only a keyed hash of it,
    so the proof of opt-in survives the erasure. Returns the devices removed.
    """
    result = await conn.execute(
        devices.delete().where(devices.c.app_id == app_id, devices.c.user_id == user_id)
    )
    await conn.execute(users.delete().where(users.c.app_id == app_id, users.c.user_id == user_id))
    return int(result.rowcount)


async def user_exists(conn: AsyncConnection, app_id: str, user_id: str) -> bool:
    found = await conn.execute(
        sa.select(sa.literal(1)).where(
            sa.or_(
                sa.exists().where(devices.c.app_id == app_id, devices.c.user_id == user_id),
                sa.exists().where(users.c.app_id == app_id, users.c.user_id == user_id),
            )
        )
    )
    return found.first() is not None


async def preferences_for(
    conn: AsyncConnection, app_id: str, user_ids: Sequence[str]
) -> dict[str, UserPreferences]:
    """Preferences of several users at once (users who never chose are absent).

    The ids travel as one parameter (an array on PostgreSQL, a JSON array on
    SQLite): a planner chunk asks for thousands, and an `IN` list of that
    many parameters cost more to build and bind than the query itself.
    """
    if not user_ids:
        return {}
    chosen = (users.c.user_id, users.c.timezone, users.c.quiet_hours, users.c.caps)
    rows = await conn.execute(
        sa.select(*chosen, users.c.categories).where(
            users.c.app_id == app_id, _one_of(conn, list(user_ids))
        )
    )
    return {row.user_id: _preferences(row) for row in rows}


def _one_of(conn: AsyncConnection, user_ids: list[str]) -> sa.ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        # A bound array, not one built server-side from JSON: PostgreSQL then knows its
        # length and picks between index probes and one scan of the app's users.
        return users.c.user_id == sa.any_(sa.literal(user_ids, postgresql.ARRAY(sa.String)))
    listed = sa.func.json_each(json.dumps(user_ids)).table_valued("value")
    return users.c.user_id.in_(sa.select(listed.c.value))
