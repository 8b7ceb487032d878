"""The device registry. Every function takes the app id: no query crosses apps."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.app import App
from clarion.model.consent import (
    DEFAULT_CONSENT,
    ConsentChange,
    ConsentStatus,
    RequestOrigin,
    subject_hash,
)
from clarion.model.device import Device, Registration
from clarion.model.ids import new_id
from clarion.model.message import WebPushSubscription
from clarion.model.platform import Platform
from clarion.model.version import version_key
from clarion.store import consent as ledger
from clarion.store.schema import device_topics, devices

USER_CHANGED_SOURCE = "user_changed"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _device(row: sa.Row[Any]) -> Device:
    keys = row.push_keys
    return Device(
        id=row.id,
        app_id=row.app_id,
        platform=Platform(row.platform),
        token=row.token,
        subscription=WebPushSubscription(row.token, keys["p256dh"], keys["auth"]) if keys else None,
        user_id=row.user_id,
        locale=row.locale,
        timezone=row.timezone,
        app_version=row.app_version,
        tags=row.tags or {},
        consent=row.consent,
        active=row.active,
        deactivated_reason=row.deactivated_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_seen=row.last_seen,
    )


@dataclass(frozen=True, slots=True)
class Upserted:
    device: Device
    created: bool


def _subject(app: App, user_id: str | None) -> str | None:
    return subject_hash(app.subject_salt, user_id) if user_id else None


async def upsert_device(
    conn: AsyncConnection,
    app: App,
    registration: Registration,
    consent: ConsentChange | None,
    origin: RequestOrigin,
    now: datetime,
) -> Upserted:
    """Register or update the device with this (platform, token).

    Re-registering reactivates a deactivated device. When the user changes,
    the previous user's topics and tags go with them, and the ledger records
    the new subject. A consent answer that differs from the stored one is
    appended to the ledger.
    """
    digest = token_hash(registration.token)
    where = (
        devices.c.app_id == app.id,
        devices.c.platform == registration.platform.value,
        devices.c.token_hash == digest,
    )
    existing = (await conn.execute(_locked(conn, devices.select().where(*where)))).first()
    if existing is None:
        inserted = await _insert(conn, app, registration, digest, now)
        if inserted is not None:
            if consent is not None:
                await _record(conn, app, inserted, consent, origin, now)
            return Upserted(await _reload(conn, app.id, inserted), created=True)
        # Lost a race with a concurrent registration of the same token.
        existing = (await conn.execute(_locked(conn, devices.select().where(*where)))).one()
    device = _device(existing)
    await _update_registration(conn, app, device, registration, origin, now)
    if consent is not None and consent.status.value != device.consent:
        await _record(conn, app, device.id, consent, origin, now)
    return Upserted(await _reload(conn, app.id, device.id), created=False)


def _locked(conn: AsyncConnection, query: sa.Select[Any]) -> sa.Select[Any]:
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


async def _insert(
    conn: AsyncConnection, app: App, reg: Registration, digest: str, now: datetime
) -> str | None:
    device_id = new_id("dev")
    values = {
        "id": device_id,
        "app_id": app.id,
        "platform": reg.platform.value,
        "token": reg.token,
        "token_hash": digest,
        "push_keys": _keys(reg.subscription),
        "user_id": reg.user_id,
        "locale": reg.locale,
        "timezone": reg.timezone,
        "app_version": reg.app_version,
        "app_version_key": version_key(reg.app_version),
        "tags": dict(reg.tags or {}),
        "consent": DEFAULT_CONSENT.value,
        "active": True,
        "created_at": now,
        "updated_at": now,
        "last_seen": now,
    }
    insert = _dialect_insert(conn)(devices).values(**values)
    insert = insert.on_conflict_do_nothing(index_elements=["app_id", "platform", "token_hash"])
    result = await conn.execute(insert.returning(devices.c.id))
    return result.scalar_one_or_none()


def _dialect_insert(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _keys(subscription: WebPushSubscription | None) -> dict[str, str] | None:
    if subscription is None:
        return None
    return {"p256dh": subscription.p256dh, "auth": subscription.auth}


async def _update_registration(
    conn: AsyncConnection,
    app: App,
    device: Device,
    reg: Registration,
    origin: RequestOrigin,
    now: datetime,
) -> None:
    values: dict[str, Any] = {"last_seen": now, "active": True, "deactivated_reason": None}
    values["deactivated_at"] = None
    for name in ("locale", "timezone", "app_version"):
        if getattr(reg, name) is not None:
            values[name] = getattr(reg, name)
    if reg.app_version is not None:
        values["app_version_key"] = version_key(reg.app_version)
    if reg.subscription is not None:
        values["push_keys"] = _keys(reg.subscription)
    if reg.tags is not None:
        values["tags"] = dict(reg.tags)
    user_changed = reg.user_id is not None and reg.user_id != device.user_id
    if user_changed:
        values["user_id"] = reg.user_id
        values["tags"] = dict(reg.tags or {})
        await conn.execute(
            device_topics.delete().where(
                device_topics.c.app_id == app.id, device_topics.c.device_id == device.id
            )
        )
    changed = {k: v for k, v in values.items() if getattr(device, k, v) != v}
    if changed or values["last_seen"] != device.last_seen:
        await conn.execute(
            devices.update()
            .where(devices.c.app_id == app.id, devices.c.id == device.id)
            .values(**values, updated_at=now if changed else device.updated_at)
        )
    if user_changed and device.user_id is not None:
        # Same OS permission, new person: the ledger links the device to its new subject.
        same = ConsentChange(status=ConsentStatus(device.consent), source=USER_CHANGED_SOURCE)
        await ledger.append_event(
            conn,
            app_id=app.id,
            device_id=device.id,
            platform=device.platform.value,
            subject=_subject(app, reg.user_id),
            old_status=device.consent,
            change=same,
            origin=origin,
            now=now,
        )


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
        subject=_subject(app, row.user_id),
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
    row = (await conn.execute(_locked(conn, query) if lock else query)).first()
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
