"""A realistic million-device audience for the fan-out benchmark, loaded fast.

The population (deterministic, no randomness between runs):

- devices on APNs, FCM, Web Push and a few on WNS, in every IANA time zone
  (a few with none, so the app's default zone applies); most seen recently;
- consent mostly granted, some provisional, denied or revoked, a few
  inactive devices;
- nine devices in ten belong to a user (two devices per user on average),
  and one user in ten has preferences: their own quiet hours (or none), a
  time zone, an opt-out of the campaign's category;
- the app has quiet hours (22:00-08:00), frequency caps and categories.

Rows are built as tuples and loaded with the driver's bulk path (the
stdlib `sqlite3` module's `executemany`, PostgreSQL's `COPY` through
asyncpg): through SQLAlchemy a million devices would take longer to seed
than to plan.
"""

from __future__ import annotations

import json
import sqlite3
import zoneinfo
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from clarion.model.ids import new_id
from clarion.store import apps as app_store
from clarion.store.db import Database
from clarion.store.schema import apps

FILTER = (
    "platform in ('apns', 'fcm', 'webpush') and tag.tier != 'churned' and last_seen > now - 90d"
)
"""Most devices: all but WNS, churned customers and devices not seen for 90 days."""
CATEGORY = "news"
APP_SETTINGS: dict[str, Any] = {
    "quiet_hours": {"start": "22:00", "end": "08:00"},
    "caps": [{"max": 3, "per": "day"}, {"max": 1, "per": "hour", "category": CATEGORY}],
    "categories": [
        {"name": CATEGORY, "default_opt_in": True},
        {"name": "promo", "default_opt_in": False},
    ],
}
PLATFORMS = ("apns", "fcm", "apns", "fcm", "webpush") * 4 + ("wns",)
CONSENT = ("granted",) * 16 + ("provisional", "denied", "revoked", "denied")
TIERS = ("free", "free", "pro", "free", "team") * 4 + ("churned",)
ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})
DEVICE_COLUMNS = (
    "id", "app_id", "platform", "token", "token_hash", "user_id", "timezone", "tags",
    "consent", "active", "created_at", "updated_at", "last_seen",
)  # fmt: skip
USER_COLUMNS = (
    "app_id", "user_id", "timezone", "quiet_hours", "caps", "categories", "created_at",
    "updated_at",
)  # fmt: skip
_SEEN_HOURS = 24 * 100
"""Devices were last seen within 100 days (nine in ten within the filter's 90)."""
_SPREAD = 2_654_435_761  # Knuth's multiplicative hash: a chunk's users are scattered


def users_for(devices: int) -> int:
    return max(1, devices // 2)


def devices_for_audience(audience: int) -> int:
    """How many devices to seed for `FILTER` to match `audience` of them.

    Mirrors the filter on the population below (the benchmark checks the
    count the store gives against it): not WNS, not churned, seen within 90 days.
    """
    matched = index = 0
    while matched < audience:
        matched += (
            PLATFORMS[index % len(PLATFORMS)] != "wns"
            and TIERS[(index // 3) % len(TIERS)] != "churned"
            and (index * 7) % _SEEN_HOURS < 90 * 24
        )
        index += 1
    return index


def device_rows(
    app_id: str, count: int, now: datetime, stamp: Callable[[datetime], Any]
) -> Iterator[tuple[Any, ...]]:
    """Devices in id order, JSON as text and timestamps as `stamp` makes them."""
    prefix = new_id("dev")[:14]  # "dev_" and the time part of an id made now
    users = users_for(count)
    tags = [json.dumps({"tier": tier}) for tier in TIERS]
    seen = [stamp(now - timedelta(hours=hours)) for hours in range(_SEEN_HOURS)]
    for index in range(count):
        when = seen[(index * 7) % _SEEN_HOURS]
        yield (
            f"{prefix}{index:016x}",  # the ULID layout, the random part a counter
            app_id,
            PLATFORMS[index % len(PLATFORMS)],
            f"token-{index:012d}",
            f"{index:064x}",
            f"user-{(index * _SPREAD) % users}" if index % 10 else None,
            ZONES[(index * 31) % len(ZONES)] if index % 33 else None,
            tags[(index // 3) % len(TIERS)],
            CONSENT[(index * 7) % len(CONSENT)],
            index % 50 != 0,
            when,
            when,
            when,
        )


def user_rows(
    app_id: str, devices: int, now: datetime, stamp: Callable[[datetime], Any]
) -> Iterator[tuple[Any, ...]]:
    """One user in ten has preferences, in four shapes."""
    for number in range(3, users_for(devices), 10):
        shape = number // 10 % 4
        quiet = (
            {"window": {"start": "21:00", "end": "07:30"}}
            if shape == 0
            else {"window": None}
            if shape == 1
            else None
        )
        zone = ZONES[(number * 17) % len(ZONES)] if shape in (0, 2) else None
        categories = {CATEGORY: False} if shape == 3 else {CATEGORY: True, "promo": True}
        yield (
            app_id,
            f"user-{number}",
            zone,
            None if quiet is None else json.dumps(quiet),
            None,
            json.dumps(categories),
            stamp(now),
            stamp(now),
        )


async def create_app(database: Database, now: datetime) -> str:
    """The app, with quiet hours, caps and categories configured."""
    async with database.write() as conn:
        app, _server, _client = await app_store.create_app(conn, name="Fanout", now=now)
        await conn.execute(
            apps.update().where(apps.c.id == app.id).values(**APP_SETTINGS, updated_at=now)
        )
    return app.id


async def load(database: Database, app_id: str, devices: int, now: datetime) -> None:
    """Bulk-load the devices and users, then refresh the planner statistics."""
    if database.is_sqlite:
        _load_sqlite(database.url.split("///", 1)[1], app_id, devices, now)
    else:
        async with database.write() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            indexes = await raw.fetch(_PG_INDEXES)
            for index in indexes:
                await raw.execute(f'DROP INDEX "{index["indexname"]}"')
            await raw.copy_records_to_table(
                "devices", records=device_rows(app_id, devices, now, _same), columns=DEVICE_COLUMNS
            )
            await raw.copy_records_to_table(
                "users", records=user_rows(app_id, devices, now, _same), columns=USER_COLUMNS
            )
            for index in indexes:
                await raw.execute(index["indexdef"])
    # A store in use has statistics and its rows' visibility settled; a bulk load has
    # neither until autovacuum comes by, which would make the first plan pay for it.
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("ANALYZE" if database.is_sqlite else "VACUUM ANALYZE"))


# The devices table's plain indexes (not those behind its key and unique constraint) are
# dropped for the load and created again from their own definitions: building an index
# from sorted rows is much faster than updating it a million times.
_PG_INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'devices'"
    " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
)
_SQLITE_INDEXES = (
    "SELECT name, sql FROM sqlite_master"
    " WHERE type = 'index' AND tbl_name = 'devices' AND sql IS NOT NULL"
)


def _same(moment: datetime) -> datetime:
    return moment


def _sqlite_stamp(moment: datetime) -> str:
    """How `UtcDateTime` stores an instant on SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _load_sqlite(path: str, app_id: str, devices: int, now: datetime) -> None:
    def insert(table: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" * len(columns))
        connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            rows,
        )

    connection = sqlite3.connect(path)
    connection.execute("PRAGMA cache_size=-262144")  # 256 MiB: the indexes stay in memory
    try:
        with connection:
            indexes = connection.execute(_SQLITE_INDEXES).fetchall()
            for name, _sql in indexes:
                connection.execute(f'DROP INDEX "{name}"')
            insert("devices", DEVICE_COLUMNS, device_rows(app_id, devices, now, _sqlite_stamp))
            insert("users", USER_COLUMNS, user_rows(app_id, devices, now, _sqlite_stamp))
            for _name, sql in indexes:
                connection.execute(sql)
        # A store in use checkpoints its write-ahead log as it goes; a bulk load leaves
        # the whole table in it, and the planner's first commits would pay to move it.
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
