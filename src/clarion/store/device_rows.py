"""Device rows to domain values and back; shared by the registry and registration."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.app import App
from clarion.model.consent import subject_hash
from clarion.model.device import Device
from clarion.model.message import WebPushSubscription
from clarion.model.platform import Platform


def token_hash(token: str) -> str:
    """What devices are unique on besides app and platform (long tokens index badly)."""
    return hashlib.sha256(token.encode()).hexdigest()


def device_from_row(row: sa.Row[Any]) -> Device:
    """The device of a `devices` row as read."""
    return device_from_values(row._mapping)


def device_from_values(row: Mapping[Any, Any]) -> Device:
    """The device of a `devices` row as read, or as written (the values of the statement)."""
    keys = row["push_keys"]
    token = row["token"]
    return Device(
        id=row["id"],
        app_id=row["app_id"],
        platform=Platform(row["platform"]),
        token=token,
        subscription=WebPushSubscription(token, keys["p256dh"], keys["auth"]) if keys else None,
        user_id=row["user_id"],
        locale=row["locale"],
        timezone=row["timezone"],
        app_version=row["app_version"],
        tags=row["tags"] or {},
        consent=row["consent"],
        active=row["active"],
        deactivated_reason=row["deactivated_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_seen=row["last_seen"],
    )


def push_keys(subscription: WebPushSubscription | None) -> dict[str, str] | None:
    """The stored `push_keys` column of a Web Push subscription (None elsewhere)."""
    if subscription is None:
        return None
    return {"p256dh": subscription.p256dh, "auth": subscription.auth}


def subject_of(app: App, user_id: str | None) -> str | None:
    """The ledger's keyed hash of a user id (None for a device without a user)."""
    return subject_hash(app.subject_salt, user_id) if user_id else None


def locked(conn: AsyncConnection, query: sa.Select[Any]) -> sa.Select[Any]:
    """`query ... FOR UPDATE` on PostgreSQL; SQLite's writer already holds the database."""
    return query.with_for_update() if conn.dialect.name == "postgresql" else query
