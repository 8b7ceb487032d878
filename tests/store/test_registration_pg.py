"""PostgreSQL's registration statements store exactly what SQLAlchemy's insert stores."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from clarion.clock import FakeClock
from clarion.model.consent import ConsentChange, ConsentStatus, RequestOrigin
from clarion.model.device import Registration
from clarion.model.message import WebPushSubscription
from clarion.model.platform import Platform
from clarion.store import apps
from clarion.store.db import Database
from clarion.store.registration import RegistrationWrite, _new_row, upsert_devices
from clarion.store.schema import devices

ORIGIN = RequestOrigin("203.0.113.7", "Shop/1.0")
PUSH = WebPushSubscription("https://push.example.net/s/9", "p" * 87, "a" * 22)
RAW = sa.text(
    "SELECT platform, push_keys IS NULL, jsonb_typeof(push_keys), push_keys::text, tags::text,"
    " created_at, updated_at, last_seen, deactivated_at, consent, active"
    " FROM devices WHERE app_id = :app_id ORDER BY token_hash"
)


async def test_rows_as_sqlalchemy_inserts_them(database: Database, clock: FakeClock) -> None:
    if database.is_sqlite:
        pytest.skip("the statements are PostgreSQL's")
    async with database.write() as conn:
        batched, _, _ = await apps.create_app(conn, name="Batched", now=clock.now())
        inserted, _, _ = await apps.create_app(conn, name="Inserted", now=clock.now())
    registrations = [
        Registration(Platform.APNS, "ab" * 32, user_id="u1", tags={"plan": "pro", "n": 2}),
        Registration(Platform.WEBPUSH, PUSH.endpoint, subscription=PUSH),
    ]
    granted = ConsentChange(ConsentStatus.GRANTED, "os_prompt")
    writes = [
        RegistrationWrite(batched, reg, granted, ORIGIN, clock.now()) for reg in registrations
    ]
    results = await database.write_sync(lambda conn: upsert_devices(conn, writes))
    assert [result.created for result in results] == [True, True]
    twins = [
        RegistrationWrite(inserted, reg, granted, ORIGIN, clock.now()) for reg in registrations
    ]
    async with database.write() as conn:
        await conn.execute(devices.insert(), [_new_row(write) for write in twins])
        stored = [tuple(row) for row in await conn.execute(RAW, {"app_id": batched.id})]
        expected = [tuple(row) for row in await conn.execute(RAW, {"app_id": inserted.id})]
    assert stored == expected
    assert stored[0][2] == "null"  # no subscription: JSON null, as SQLAlchemy's JSON writes None
