"""The planner's bulk writes store what SQLAlchemy's own insert would, on both backends."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from clarion.model.preferences import UserPreferences
from clarion.store import apps
from clarion.store.db import Database
from clarion.store.plan_writes import DeliveryGroup, insert_deliveries
from clarion.store.schema_pipeline import deliveries
from clarion.store.users import preferences_for, put_preferences

NOW = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)
GROUPS = [
    DeliveryGroup("apns", "queued", None, NOW, ["dev_a", "dev_b", "dev_c"]),
    DeliveryGroup("fcm", "queued", None, NOW, ["dev_d"]),
    DeliveryGroup(
        "webpush", "scheduled", None, NOW + timedelta(hours=6, microseconds=7), ["dev_e", "dev_f"]
    ),
    DeliveryGroup("apns", "suppressed", "no_consent", None, ["dev_g", 'dev_"quoted", comma']),
    DeliveryGroup("wns", "expired", "ttl", None, ["dev_h\u00e9"]),
    DeliveryGroup("fcm", "suppressed", "quiet_hours", None, []),
]
RAW = sa.text(
    "SELECT device_id, app_id, platform, status, reason, attempts, provider_message_id,"
    " due_at, sent_at, updated_at FROM deliveries WHERE notification_id = :ntf ORDER BY device_id"
)


def _dicts(notification_id: str) -> list[dict[str, object]]:
    return [
        {
            "notification_id": notification_id,
            "device_id": device_id,
            "app_id": "app_1",
            "platform": group.platform,
            "status": group.status,
            "reason": group.reason,
            "attempts": 0,
            "due_at": group.due_at,
            "updated_at": NOW,
        }
        for group in GROUPS
        for device_id in group.device_ids
    ]


async def test_bulk_deliveries_are_stored_exactly_as_the_core_insert_stores_them(
    database: Database,
) -> None:
    async with database.write() as conn:
        written = await insert_deliveries(conn, "ntf_bulk", "app_1", NOW, GROUPS)
        await conn.execute(deliveries.insert(), _dicts("ntf_core"))
    assert written == 9
    async with database.read() as conn:
        bulk = (await conn.execute(RAW, {"ntf": "ntf_bulk"})).all()
        core = (await conn.execute(RAW, {"ntf": "ntf_core"})).all()
        typed = (
            await conn.execute(
                sa.select(deliveries.c.device_id, deliveries.c.due_at, deliveries.c.updated_at)
                .where(deliveries.c.notification_id == "ntf_bulk")
                .order_by(deliveries.c.device_id)
            )
        ).all()
    assert [tuple(row) for row in bulk] == [tuple(row) for row in core]
    assert len(bulk) == 9
    due = {row.device_id: row.due_at for row in typed}
    assert due["dev_e"] == NOW + timedelta(hours=6, microseconds=7)
    assert due['dev_"quoted", comma'] is None
    assert {row.updated_at for row in typed} == {NOW}


async def test_no_deliveries_write_nothing(database: Database) -> None:
    async with database.write() as conn:
        assert await insert_deliveries(conn, "ntf_1", "app_1", NOW, []) == 0
        assert await insert_deliveries(conn, "ntf_1", "app_1", NOW, GROUPS[-1:]) == 0
        count = (await conn.execute(sa.select(sa.func.count()).select_from(deliveries))).scalar()
    assert count == 0


async def test_preferences_of_thousands_of_users_come_back_for_those_who_chose_in_this_app(
    database: Database,
) -> None:
    chose = UserPreferences({"news": False}, None, True, "Asia/Tokyo", None)
    async with database.write() as conn:
        app, _, _ = await apps.create_app(conn, name="Mine", now=NOW)
        other, _, _ = await apps.create_app(conn, name="Other", now=NOW)
        for number in range(0, 3000, 100):
            await put_preferences(conn, app.id, f"user-{number}", chose, NOW)
        await put_preferences(conn, other.id, "user-1", chose, NOW)
    asked = [f"user-{number}" for number in range(3000)] + ["o'brien", 'say "hi"']
    async with database.read() as conn:
        found = await preferences_for(conn, app.id, asked)
        none = await preferences_for(conn, app.id, [])
    assert sorted(found) == sorted(f"user-{number}" for number in range(0, 3000, 100))
    assert found["user-100"].timezone == "Asia/Tokyo"
    assert found["user-100"].categories == {"news": False}
    assert found["user-100"].quiet_hours_set and found["user-100"].quiet_hours is None
    assert none == {}
