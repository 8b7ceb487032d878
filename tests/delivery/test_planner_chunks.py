"""Planning in small chunks of small pages writes what planning in one go writes."""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from clarion.delivery import planner
from clarion.delivery.planner import PlanConflict, plan_chunk
from clarion.model.notification import parse_notification
from clarion.store import apps
from clarion.store.db import Database
from clarion.store.notifications import create_notification
from clarion.store.schema import apps as apps_table
from clarion.store.schema import devices
from clarion.store.schema_pipeline import deliveries, jobs, notifications

NOW = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
ZONES = [None, "Europe/Paris", "Asia/Tokyo", "America/Chicago"]
CONSENT = ["granted", "granted", "denied", "provisional", "revoked"]


async def _audience(database: Database, count: int) -> str:
    async with database.write() as conn:
        app, _, _ = await apps.create_app(conn, name="Chunks", now=NOW)
        quiet = {"start": "22:00", "end": "07:00"}
        await conn.execute(
            apps_table.update().where(apps_table.c.id == app.id).values(quiet_hours=quiet)
        )
        await conn.execute(devices.insert(), [_device(app.id, i) for i in range(count)])
    return app.id


def _device(app_id: str, index: int) -> dict[str, Any]:
    token = f"token-{index}"
    return {
        "id": f"dev_{index:05d}",
        "app_id": app_id,
        "platform": ("apns", "fcm", "webpush")[index % 3],
        "token": token,
        "token_hash": hashlib.sha256(token.encode()).hexdigest(),
        "tags": {},
        "timezone": ZONES[index % 4],
        "consent": CONSENT[index % 5],
        "active": index % 7 != 0,
        "created_at": NOW,
        "updated_at": NOW,
        "last_seen": NOW,
    }


async def _notify(database: Database, app_id: str) -> str:
    spec = parse_notification({"audience": {"all": True}, "content": {"title": "Hi"}}, NOW)
    async with database.write() as conn:
        return await create_notification(conn, app_id, spec, NOW)


async def _written(database: Database, notification_id: str) -> tuple[list[Any], list[Any]]:
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(
                deliveries.c.device_id,
                deliveries.c.platform,
                deliveries.c.status,
                deliveries.c.reason,
                deliveries.c.due_at,
            )
            .where(deliveries.c.notification_id == notification_id)
            .order_by(deliveries.c.device_id)
        )
        sends = await conn.execute(
            sa.select(jobs.c.payload, jobs.c.due_at).where(jobs.c.kind == "send")
        )
        carried = sorted(
            (device, payload["platform"], due)
            for payload, due in sends
            if payload["notification_id"] == notification_id
            for device in payload["devices"]
        )
    return [tuple(row) for row in rows], carried


async def test_small_chunks_of_small_pages_plan_each_device_once_as_one_chunk_would(
    database: Database,
) -> None:
    app_id = await _audience(database, 101)
    whole, pieces = await _notify(database, app_id), await _notify(database, app_id)
    one = await plan_chunk(database, app_id, whole, NOW)
    assert (one.planned, one.done) == (101, True)
    results = []
    while not results or not results[-1].done:
        results.append(await plan_chunk(database, app_id, pieces, NOW, chunk=20, page=7))
    assert [r.planned for r in results] == [20, 20, 20, 20, 20, 1]
    assert sum(r.queued for r in results) == one.queued
    expected, expected_sends = await _written(database, whole)
    got, got_sends = await _written(database, pieces)
    assert got == expected
    assert got_sends == expected_sends
    assert len(got) == 101 and len(got_sends) == one.queued
    statuses = {row[2] for row in got}
    assert statuses == {"queued", "scheduled", "suppressed"}
    sendable = [row[0] for row in got if row[2] in ("queued", "scheduled")]
    assert sorted(device for device, _, _ in got_sends) == sendable
    later = [row[4] for row in got if row[2] == "scheduled"]
    assert min(later) > NOW and max(later) < NOW + timedelta(days=1)


async def test_an_audience_ending_on_a_chunk_boundary_finishes_with_an_empty_chunk(
    database: Database,
) -> None:
    app_id = await _audience(database, 10)
    notification_id = await _notify(database, app_id)
    first = await plan_chunk(database, app_id, notification_id, NOW, chunk=10, page=4)
    second = await plan_chunk(database, app_id, notification_id, NOW, chunk=10, page=4)
    assert (first.planned, first.done, second.planned, second.done) == (10, False, 0, True)
    async with database.read() as conn:
        record = (
            await conn.execute(
                sa.select(notifications.c.targeted, notifications.c.status).where(
                    notifications.c.id == notification_id
                )
            )
        ).one()
    assert tuple(record) in {(10, "sending"), (10, "completed")}


async def test_a_planner_overtaken_mid_chunk_rolls_its_chunk_back(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_id = await _audience(database, 12)
    notification_id = await _notify(database, app_id)
    fan_out = planner._fan_out

    async def overtaken(*args: Any, **kwargs: Any) -> Any:
        # Another planner advances the progress after this one read it.
        fanned = await fan_out(*args, **kwargs)
        await args[1].execute(
            notifications.update()
            .where(notifications.c.id == notification_id)
            .values(planned_through="dev_00005")
        )
        return fanned

    monkeypatch.setattr(planner, "_fan_out", overtaken)
    with pytest.raises(PlanConflict):
        await plan_chunk(database, app_id, notification_id, NOW, chunk=5, page=2)
    assert await _written(database, notification_id) == ([], [])
