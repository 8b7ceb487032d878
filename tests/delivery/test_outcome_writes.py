"""A send job's outcomes written set-based, and the completion check, on both backends."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from clarion.store import apps
from clarion.store.db import Database
from clarion.store.deliveries import Final, record_finals
from clarion.store.notifications import complete_if_done
from clarion.store.schema_pipeline import deliveries, notifications

NOW = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=1)
STARTING = {
    "dev_a": ("queued", 0),
    "dev_b": ("queued", 2),
    "dev_c": ("queued", 0),
    "dev_d": ("scheduled", 0),
    "dev_e": ("sent", 1),  # ended by an earlier run of the same job: left alone
}
FINALS = [
    Final("dev_a", "sent", None, "apns-unique-1", 1),
    Final("dev_b", "failed", "invalid_token", None, 1),
    Final("dev_c", "suppressed", "no_consent", None, 0),
    Final("dev_d", "sent", None, None, 1),
    Final("dev_e", "failed", "Unregistered", None, 1),
]
RAW = sa.text(
    "SELECT device_id, status, reason, attempts, provider_message_id, sent_at, updated_at"
    " FROM deliveries WHERE notification_id = :ntf ORDER BY device_id"
)


async def _seed(database: Database, notification_id: str) -> None:
    async with database.write() as conn:
        await conn.execute(
            deliveries.insert(),
            [
                {
                    "notification_id": notification_id,
                    "device_id": device_id,
                    "app_id": "app_1",
                    "platform": "apns",
                    "status": status,
                    "attempts": attempts,
                    "sent_at": EARLIER if status == "sent" else None,
                    "updated_at": EARLIER,
                }
                for device_id, (status, attempts) in STARTING.items()
            ],
        )


async def _core_update(database: Database, notification_id: str) -> None:
    """What the per-row SQLAlchemy update wrote before: the reference."""
    async with database.write() as conn:
        for final in FINALS:
            await conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.notification_id == notification_id,
                    deliveries.c.device_id == final.device_id,
                    deliveries.c.status.in_(["queued", "scheduled"]),
                )
                .values(
                    status=final.status,
                    reason=final.reason,
                    provider_message_id=final.provider_id,
                    sent_at=NOW if final.status == "sent" else None,
                    attempts=deliveries.c.attempts + final.tried,
                    updated_at=NOW,
                )
            )


async def test_outcomes_are_stored_exactly_as_the_per_row_update_stored_them(
    database: Database,
) -> None:
    await _seed(database, "ntf_set")
    await _seed(database, "ntf_core")
    async with database.write() as conn:
        await record_finals(conn, "ntf_set", FINALS, NOW)
    await _core_update(database, "ntf_core")
    async with database.read() as conn:
        written = (await conn.execute(RAW, {"ntf": "ntf_set"})).all()
        reference = (await conn.execute(RAW, {"ntf": "ntf_core"})).all()
        typed = (
            await conn.execute(
                sa.select(deliveries.c.device_id, deliveries.c.sent_at, deliveries.c.attempts)
                .where(deliveries.c.notification_id == "ntf_set")
                .order_by(deliveries.c.device_id)
            )
        ).all()
    assert written == reference
    assert [(row.status, row.reason) for row in written] == [
        ("sent", None),
        ("failed", "invalid_token"),
        ("suppressed", "no_consent"),
        ("sent", None),
        ("sent", None),
    ]
    assert [tuple(row) for row in typed] == [
        ("dev_a", NOW, 1),
        ("dev_b", None, 3),
        ("dev_c", None, 0),
        ("dev_d", NOW, 1),
        ("dev_e", EARLIER, 1),
    ]


async def _notification(database: Database, notification_id: str, status: str) -> None:
    async with database.write() as conn:
        app, _, _ = await apps.create_app(conn, name="Outcomes", now=EARLIER)
        await conn.execute(
            notifications.insert().values(
                id=notification_id,
                app_id=app.id,
                status=status,
                spec={},
                send_at=EARLIER,
                expires_at=NOW + timedelta(days=1),
                targeted=len(STARTING),
                created_at=EARLIER,
            )
        )


async def _status(database: Database, notification_id: str) -> tuple[str, datetime | None]:
    async with database.read() as conn:
        row = (
            await conn.execute(
                sa.select(notifications.c.status, notifications.c.completed_at).where(
                    notifications.c.id == notification_id
                )
            )
        ).one()
    return row.status, row.completed_at


async def test_a_notification_completes_once_when_its_last_delivery_ends(
    database: Database,
) -> None:
    await _notification(database, "ntf_set", "sending")
    await _seed(database, "ntf_set")
    async with database.write() as conn:
        await record_finals(conn, "ntf_set", FINALS[:3], NOW)
        assert not await complete_if_done(conn, "ntf_set", NOW)
    assert await _status(database, "ntf_set") == ("sending", None)
    async with database.write() as conn:
        await record_finals(conn, "ntf_set", FINALS[3:], NOW)
        assert await complete_if_done(conn, "ntf_set", NOW)
        assert not await complete_if_done(conn, "ntf_set", NOW)
    assert await _status(database, "ntf_set") == ("completed", NOW)


async def test_a_notification_still_planning_does_not_complete(database: Database) -> None:
    await _notification(database, "ntf_set", "planning")
    await _seed(database, "ntf_set")
    async with database.write() as conn:
        await record_finals(conn, "ntf_set", FINALS, NOW)
        assert not await complete_if_done(conn, "ntf_set", NOW)
    assert await _status(database, "ntf_set") == ("planning", None)
