"""Apps and their API keys. Every query but `find_key` is scoped by app id."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.app import App, Category, parse_categories
from clarion.model.ids import new_id
from clarion.model.keys import NewKey, Role, generate_role_key
from clarion.model.preferences import parse_caps, parse_quiet_hours
from clarion.store.schema import api_keys, apps

_changes = 0


def changes() -> int:
    """How many times this process changed an app or revoked a key.

    Caches of keys and apps (`clarion.api.lookups`) compare it to forget at
    once what this process changed.
    """
    return _changes


def _changed() -> None:
    global _changes
    _changes += 1


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What is stored of a key: never the key itself."""

    id: str
    app_id: str
    role: Role
    hint: str
    created_at: datetime
    revoked_at: datetime | None


def _app(row: sa.Row[Any]) -> App:
    return App(
        id=row.id,
        name=row.name,
        default_timezone=row.default_timezone,
        quiet_hours=parse_quiet_hours(row.quiet_hours),
        caps=parse_caps(row.caps),
        categories=parse_categories(row.categories),
        subject_salt=row.subject_salt,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def create_app(
    conn: AsyncConnection, *, name: str, now: datetime, default_timezone: str = "UTC"
) -> tuple[App, NewKey, NewKey]:
    """A new app with one server key and one client key (shown only now)."""
    app_id = new_id("app")
    await conn.execute(
        apps.insert().values(
            id=app_id,
            name=name,
            default_timezone=default_timezone,
            quiet_hours=None,
            caps=[],
            categories=[],
            subject_salt=secrets.token_bytes(32),
            created_at=now,
            updated_at=now,
        )
    )
    _, server = await create_key(conn, app_id, Role.SERVER, now)
    _, client = await create_key(conn, app_id, Role.CLIENT, now)
    app = await get_app(conn, app_id)
    if app is None:
        raise RuntimeError(f"app {app_id} vanished inside its own transaction")
    return app, server, client


async def get_app(conn: AsyncConnection, app_id: str) -> App | None:
    row = (await conn.execute(apps.select().where(apps.c.id == app_id))).first()
    return _app(row) if row else None


async def list_apps(conn: AsyncConnection) -> list[App]:
    rows = await conn.execute(apps.select().order_by(apps.c.id))
    return [_app(row) for row in rows]


async def update_app(
    conn: AsyncConnection, app_id: str, changes: Mapping[str, Any], now: datetime
) -> App | None:
    """Apply already-validated changes (name, default_timezone, quiet_hours, caps, categories)."""
    _changed()
    values = dict(changes)
    if "categories" in values:
        values["categories"] = [
            c.as_json() if isinstance(c, Category) else c for c in values["categories"]
        ]
    await conn.execute(apps.update().where(apps.c.id == app_id).values(**values, updated_at=now))
    return await get_app(conn, app_id)


async def create_key(
    conn: AsyncConnection, app_id: str, role: Role, now: datetime
) -> tuple[ApiKey, NewKey]:
    new = generate_role_key(role)
    key_id = new_id("key")
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            app_id=app_id,
            role=role.value,
            key_hash=new.hash,
            hint=new.hint,
            created_at=now,
        )
    )
    return ApiKey(key_id, app_id, role, new.hint, now, None), new


async def find_key(conn: AsyncConnection, key_hash: str) -> ApiKey | None:
    """The live (not revoked) key with this hash: how a request is authenticated."""
    row = (
        await conn.execute(
            api_keys.select().where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    return ApiKey(row.id, row.app_id, Role(row.role), row.hint, row.created_at, row.revoked_at)


async def list_keys(conn: AsyncConnection, app_id: str) -> list[ApiKey]:
    rows = await conn.execute(
        api_keys.select().where(api_keys.c.app_id == app_id).order_by(api_keys.c.id)
    )
    return [ApiKey(r.id, r.app_id, Role(r.role), r.hint, r.created_at, r.revoked_at) for r in rows]


async def revoke_key(conn: AsyncConnection, app_id: str, key_id: str, now: datetime) -> bool:
    result = await conn.execute(
        api_keys.update()
        .where(
            api_keys.c.app_id == app_id,
            api_keys.c.id == key_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    _changed()
    return result.rowcount > 0
