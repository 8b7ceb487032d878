"""The device registry. Every function takes the app id: no query crosses apps."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.app import App
from clarion.model.consent import ConsentChange, RequestOrigin
from clarion.model.device import Device
from clarion.model.platform import Platform
from clarion.model.version import version_key
from clarion.store import consent as ledger
from clarion.store.device_rows import device_from_row, locked, subject_of, token_hash
from clarion.store.registration import (
    USER_CHANGED_SOURCE,
    RegistrationWrite,
    Upserted,
    upsert_device,
    upsert_devices,
)
from clarion.store.schema import devices

__all__ = [
    "USER_CHANGED_SOURCE",
    "RegistrationWrite",
    "Upserted",
    "delete_device",
    "get_device",
    "list_devices",
    "patch_device",
    "set_consent",
    "token_hash",
    "upsert_device",
    "upsert_devices",
    "user_devices",
]

_device = device_from_row
"""Kept under its old name: the dashboard's queries map rows with it."""


async def _record(
    conn: AsyncConnection,
    app: App,
    device_id: str,
    change: ConsentChange,
    origin: RequestOrigin,
    now: datetime,
) -> None:
    row = (
        await conn.execute(
            sa.select(devices.c.consent, devices.c.user_id, devices.c.platform).where(
                devices.c.app_id == app.id, devices.c.id == device_id
            )
        )
    ).one()
    await conn.execute(
        devices.update()
        .where(devices.c.app_id == app.id, devices.c.id == device_id)
        .values(consent=change.status.value, updated_at=now)
    )
    await ledger.append_event(
        conn,
        app_id=app.id,
        device_id=device_id,
        platform=row.platform,
        subject=subject_of(app, row.user_id),
        old_status=row.consent,
        change=change,
        origin=origin,
        now=now,
    )


async def set_consent(
    conn: AsyncConnection,
    app: App,
    device_id: str,
    change: ConsentChange,
    origin: RequestOrigin,
    now: datetime,
) -> Device | None:
    """Record a consent answer; an unchanged status appends nothing."""
    device = await get_device(conn, app.id, device_id, lock=True)
    if device is None:
        return None
    if device.consent != change.status.value:
        await _record(conn, app, device_id, change, origin, now)
    return await get_device(conn, app.id, device_id)


async def _reload(conn: AsyncConnection, app_id: str, device_id: str) -> Device:
    device = await get_device(conn, app_id, device_id)
    if device is None:
        raise RuntimeError(f"device {device_id} vanished inside its own transaction")
    return device


async def get_device(
    conn: AsyncConnection, app_id: str, device_id: str, *, lock: bool = False
) -> Device | None:
    query = devices.select().where(devices.c.app_id == app_id, devices.c.id == device_id)
    row = (await conn.execute(locked(conn, query) if lock else query)).first()
    return _device(row) if row else None


async def list_devices(
    conn: AsyncConnection,
    app_id: str,
    *,
    after: str | None,
    limit: int,
    user_id: str | None = None,
    platform: Platform | None = None,
    active: bool | None = None,
) -> list[Device]:
    query = devices.select().where(devices.c.app_id == app_id)
    if after:
        query = query.where(devices.c.id > after)
    if user_id is not None:
        query = query.where(devices.c.user_id == user_id)
    if platform is not None:
        query = query.where(devices.c.platform == platform.value)
    if active is not None:
        query = query.where(devices.c.active == active)
    rows = await conn.execute(query.order_by(devices.c.id).limit(limit))
    return [_device(row) for row in rows]


async def patch_device(
    conn: AsyncConnection, app_id: str, device_id: str, changes: Mapping[str, Any], now: datetime
) -> Device | None:
    """Apply validated changes (user_id, locale, timezone, app_version, tags, active)."""
    values = dict(changes)
    if "app_version" in values:
        values["app_version_key"] = version_key(values["app_version"])
    if values.get("active") is True:
        values.update(deactivated_reason=None, deactivated_at=None)
    elif values.get("active") is False:
        values.update(deactivated_reason="api", deactivated_at=now)
    result = await conn.execute(
        devices.update()
        .where(devices.c.app_id == app_id, devices.c.id == device_id)
        .values(**values, updated_at=now)
    )
    if result.rowcount == 0:
        return None
    return await get_device(conn, app_id, device_id)


async def delete_device(conn: AsyncConnection, app_id: str, device_id: str) -> bool:
    result = await conn.execute(
        devices.delete().where(devices.c.app_id == app_id, devices.c.id == device_id)
    )
    return result.rowcount > 0


async def user_devices(conn: AsyncConnection, app_id: str, user_id: str) -> list[Device]:
    rows = await conn.execute(
        devices.select()
        .where(devices.c.app_id == app_id, devices.c.user_id == user_id)
        .order_by(devices.c.id)
    )
    return [_device(row) for row in rows]
