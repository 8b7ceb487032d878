"""Device registration: upsert on (app, platform, token), one or many at a time.

A batch is written in the same handful of statements whatever its size (look
up the existing rows, insert the new ones, update the others, append the
ledger events), so the API can write the registrations that arrive together
in one transaction (`GroupCommit`). A single registration is a batch of one:
there is one code path. It is synchronous code on a `sa.Connection`, so on
SQLite the whole batch runs in the writer thread (`Database.write_sync`).
On PostgreSQL a batch is two statements of fixed text (`registration_pg`).
The answers are built from the values written, not read back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.app import App
from clarion.model.consent import DEFAULT_CONSENT, ConsentChange, ConsentStatus, RequestOrigin
from clarion.model.device import Device, Registration
from clarion.model.ids import new_id
from clarion.model.version import version_key
from clarion.store import registration_pg
from clarion.store.device_rows import (
    device_from_row,
    device_from_values,
    push_keys,
    subject_of,
    token_hash,
)
from clarion.store.schema import consent_events, device_topics, devices

USER_CHANGED_SOURCE = "user_changed"

DeviceKey = tuple[str, str, str]
"""What a device is unique on: (app id, platform, SHA-256 of the token)."""


@dataclass(frozen=True, slots=True)
class Upserted:
    device: Device
    created: bool


@dataclass(frozen=True, slots=True)
class RegistrationWrite:
    """One validated registration with the moment and origin of its request."""

    app: App
    registration: Registration
    consent: ConsentChange | None
    origin: RequestOrigin
    now: datetime
    key: DeviceKey = field(init=False)

    def __post_init__(self) -> None:
        reg = self.registration
        object.__setattr__(self, "key", (self.app.id, reg.platform.value, token_hash(reg.token)))
        object.__setattr__(self, "now", self.now.astimezone(UTC))


async def upsert_device(
    conn: AsyncConnection,
    app: App,
    registration: Registration,
    consent: ConsentChange | None,
    origin: RequestOrigin,
    now: datetime,
) -> Upserted:
    """Register or update the device with this (platform, token): see `upsert_devices`."""
    write = RegistrationWrite(app, registration, consent, origin, now)
    (result,) = await conn.run_sync(upsert_devices, [write])
    return result


def upsert_devices(conn: sa.Connection, writes: Sequence[RegistrationWrite]) -> list[Upserted]:
    """Register or update each device; the results are in the order of `writes`.

    Re-registering reactivates a deactivated device. When the user changes,
    the previous user's topics and tags go with them, and the ledger records
    the new subject. A consent answer that differs from the stored one (for a
    new device: any answer) is appended to the ledger. Each (app, platform,
    token) may appear once per batch.
    """
    keys = [write.key for write in writes]
    if len(set(keys)) < len(keys):
        raise ValueError("a batch registers each (app, platform, token) at most once")
    if conn.dialect.name == "postgresql":
        return _upsert_postgres(conn, writes)
    rows = _existing(conn, keys)
    fresh = {write.key: _new_row(write) for write in writes if write.key not in rows}
    created = _insert(conn, list(fresh.values()))
    lost = [key for key in fresh if key not in created]
    if lost:
        # Lost a race with a concurrent registration of the same token (another process).
        rows.update(_existing(conn, lost))
    changes = _Changes()
    results: list[Upserted] = []
    for write in writes:
        if write.key in created:
            changes.add_new(write, fresh[write.key]["id"])
            results.append(Upserted(device_from_values(fresh[write.key]), created=True))
        else:
            values = changes.add_existing(write, rows[write.key])
            results.append(Upserted(device_from_values(values), created=False))
    changes.write(conn)
    return results


def _upsert_postgres(conn: sa.Connection, writes: Sequence[RegistrationWrite]) -> list[Upserted]:
    """`upsert_devices` on PostgreSQL in one or two statements (`registration_pg`).

    The first inserts the new devices, locks and returns the stored ones and,
    if every device was new, appends the events their answers make (those
    are known beforehand): most batches are one statement. Otherwise the
    second writes the changes and every event, in batch order.
    """
    proposed = {write.key: _new_row(write) for write in writes}
    if_all_new = _Changes()
    for write in writes:
        if_all_new.add_new(write, proposed[write.key]["id"])
    stored = registration_pg.claim(conn, list(proposed.values()), if_all_new.events)
    if all(stored[key].id == row["id"] for key, row in proposed.items()):
        return [Upserted(device_from_values(row), created=True) for row in proposed.values()]
    changes = _Changes()
    results: list[Upserted] = []
    for write in writes:
        new, row = proposed[write.key], stored[write.key]
        if row.id == new["id"]:
            changes.add_new(write, new["id"])
            results.append(Upserted(device_from_values(new), created=True))
        else:
            values = changes.add_existing(write, row)
            results.append(Upserted(device_from_values(values), created=False))
    changes.write_postgres(conn)
    return results


def _existing(conn: sa.Connection, keys: Sequence[DeviceKey]) -> dict[DeviceKey, Any]:
    """The stored rows of these keys (SQLite: its writer holds the database), one query per
    (app, platform)."""
    groups: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for app_id, platform, digest in keys:
        groups[app_id, platform].append(digest)
    found: dict[DeviceKey, Any] = {}
    for (app_id, platform), digests in groups.items():
        query = devices.select().where(
            devices.c.app_id == app_id,
            devices.c.platform == platform,
            devices.c.token_hash.in_(digests),
        )
        for row in conn.execute(query):
            found[app_id, platform, row.token_hash] = row
    return found


def _insert(conn: sa.Connection, values: list[dict[str, Any]]) -> set[DeviceKey]:
    """Insert new devices; the keys of those inserted (a conflicting one is left out)."""
    if not values:
        return set()
    insert = _dialect_insert(conn)(devices)
    insert = insert.on_conflict_do_nothing(index_elements=["app_id", "platform", "token_hash"])
    result = conn.execute(
        insert.returning(devices.c.id, devices.c.app_id, devices.c.platform, devices.c.token_hash),
        values,
    )
    return {(row.app_id, row.platform, row.token_hash) for row in result}


def _dialect_insert(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _new_row(write: RegistrationWrite) -> dict[str, Any]:
    reg, now = write.registration, write.now
    consent = write.consent.status.value if write.consent else DEFAULT_CONSENT.value
    return {
        "id": new_id("dev"),
        "app_id": write.app.id,
        "platform": reg.platform.value,
        "token": reg.token,
        "token_hash": write.key[2],
        "push_keys": push_keys(reg.subscription),
        "user_id": reg.user_id,
        "locale": reg.locale,
        "timezone": reg.timezone,
        "app_version": reg.app_version,
        "app_version_key": version_key(reg.app_version),
        "tags": dict(reg.tags or {}),
        "consent": consent,
        "active": True,
        "deactivated_reason": None,
        "deactivated_at": None,
        "created_at": now,
        "updated_at": now,
        "last_seen": now,
    }


_UPDATED = (
    "user_id",
    "locale",
    "timezone",
    "app_version",
    "app_version_key",
    "push_keys",
    "tags",
    "consent",
    "active",
    "deactivated_reason",
    "deactivated_at",
    "last_seen",
    "updated_at",
)


@dataclass
class _Changes:
    """The statements of a batch, gathered first and then written once each."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    moved: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add_new(self, write: RegistrationWrite, device_id: str) -> None:
        if write.consent is not None:
            reg = write.registration
            subject = subject_of(write.app, reg.user_id)
            old = DEFAULT_CONSENT.value
            self._event(write, device_id, reg.platform.value, subject, old, write.consent)

    def add_existing(self, write: RegistrationWrite, row: Any) -> dict[str, Any]:
        """Gather the re-registration of a stored device; returns its row as written."""
        device, reg, now = device_from_row(row), write.registration, write.now
        values: dict[str, Any] = {"last_seen": now, "active": True, "deactivated_reason": None}
        values["deactivated_at"] = None
        for name in ("locale", "timezone", "app_version"):
            if getattr(reg, name) is not None:
                values[name] = getattr(reg, name)
        if reg.app_version is not None:
            values["app_version_key"] = version_key(reg.app_version)
        if reg.subscription is not None:
            values["push_keys"] = push_keys(reg.subscription)
        if reg.tags is not None:
            values["tags"] = dict(reg.tags)
        user_changed = reg.user_id is not None and reg.user_id != device.user_id
        if user_changed:
            values["user_id"] = reg.user_id
            values["tags"] = dict(reg.tags or {})
            self.moved[write.app.id].append(device.id)
        changed = any(getattr(device, k, v) != v for k, v in values.items())
        values["updated_at"] = now if changed else device.updated_at
        platform = device.platform.value
        if user_changed and device.user_id is not None:
            # Same OS permission, new person: the ledger links the device to its new subject.
            same = ConsentChange(status=ConsentStatus(device.consent), source=USER_CHANGED_SOURCE)
            subject = subject_of(write.app, reg.user_id)
            self._event(write, device.id, platform, subject, device.consent, same)
        if write.consent is not None and write.consent.status.value != device.consent:
            values["consent"] = write.consent.status.value
            values["updated_at"] = now
            subject = subject_of(write.app, values.get("user_id", device.user_id))
            self._event(write, device.id, platform, subject, device.consent, write.consent)
        update = {name: values.get(name, getattr(row, name)) for name in _UPDATED}
        self.updates.append({**update, "b_app_id": write.app.id, "b_id": device.id})
        return {**row._asdict(), **update}

    def _event(
        self,
        write: RegistrationWrite,
        device_id: str,
        platform: str,
        subject: str | None,
        old_status: str | None,
        change: ConsentChange,
    ) -> None:
        agent = write.origin.user_agent
        self.events.append(
            {
                "app_id": write.app.id,
                "device_id": device_id,
                "platform": platform,
                "subject_hash": subject,
                "old_status": old_status,
                "new_status": change.status.value,
                "source": change.source,
                "text_version": change.text_version,
                "client_time": change.client_time,
                "server_time": write.now,
                "ip": write.origin.ip,
                "user_agent": agent[:512] if agent else None,
            }
        )

    def write_postgres(self, conn: sa.Connection) -> None:
        """Write the changes in one statement (`registration_pg.write_changes`)."""
        registration_pg.write_changes(conn, self.updates, self.moved, self.events)

    def write(self, conn: sa.Connection) -> None:
        for app_id, moved in self.moved.items():
            conn.execute(
                device_topics.delete().where(
                    device_topics.c.app_id == app_id, device_topics.c.device_id.in_(moved)
                )
            )
        if self.updates:
            update = devices.update().where(
                devices.c.app_id == sa.bindparam("b_app_id"), devices.c.id == sa.bindparam("b_id")
            )
            conn.execute(update, self.updates)
        if self.events:
            # One executemany in batch order: the ledger's ids keep each device's order.
            conn.execute(consent_events.insert(), self.events)
