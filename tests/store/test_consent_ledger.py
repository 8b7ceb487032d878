"""The consent ledger is append-only: the store has no way to change it, nor does SQL."""

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from clarion.clock import FakeClock
from clarion.model.consent import ConsentChange, ConsentStatus, RequestOrigin
from clarion.model.device import Registration
from clarion.model.platform import Platform
from clarion.store import apps, devices
from clarion.store import consent as ledger
from clarion.store.db import Database
from clarion.store.schema import consent_events


async def _device_with_history(database: Database, clock: FakeClock) -> tuple[str, str]:
    async with database.write() as conn:
        app, _, _ = await apps.create_app(conn, name="Ledger", now=clock.now())
        result = await devices.upsert_device(
            conn,
            app,
            Registration(Platform.FCM, "token-1", user_id="u-1"),
            ConsentChange(ConsentStatus.GRANTED, "os_prompt", "v3"),
            RequestOrigin("203.0.113.9", "ShopApp/2.3"),
            clock.now(),
        )
    clock.advance(60)
    async with database.write() as conn:
        await devices.set_consent(
            conn,
            app,
            result.device.id,
            ConsentChange(ConsentStatus.REVOKED, "settings"),
            RequestOrigin("203.0.113.10", "ShopApp/2.3"),
            clock.now(),
        )
    return app.id, result.device.id


async def test_each_change_appends_an_event_with_its_origin(
    database: Database, clock: FakeClock
) -> None:
    app_id, device_id = await _device_with_history(database, clock)
    async with database.read() as conn:
        history = await ledger.device_history(conn, app_id, device_id)
    assert [(e.old_status, e.new_status) for e in history] == [
        ("denied", "granted"),
        ("granted", "revoked"),
    ]
    assert history[0].source == "os_prompt"
    assert history[0].text_version == "v3"
    assert history[0].ip == "203.0.113.9"
    assert history[1].server_time > history[0].server_time
    assert history[0].subject_hash is not None
    assert "u-1" not in history[0].subject_hash


@pytest.mark.parametrize(
    "statement",
    [
        consent_events.update().values(new_status="granted"),
        consent_events.delete(),
    ],
    ids=["update", "delete"],
)
async def test_database_refuses_to_change_or_delete_events(
    database: Database, clock: FakeClock, statement: sa.Executable
) -> None:
    app_id, device_id = await _device_with_history(database, clock)
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.write() as conn:
            await conn.execute(statement)
    async with database.read() as conn:
        history = await ledger.device_history(conn, app_id, device_id)
    assert [e.new_status for e in history] == ["granted", "revoked"]


async def test_setting_the_same_status_appends_nothing(
    database: Database, clock: FakeClock
) -> None:
    app_id, device_id = await _device_with_history(database, clock)
    async with database.write() as conn:
        app = await apps.get_app(conn, app_id)
        assert app is not None
        await devices.set_consent(
            conn, app, device_id, ConsentChange(ConsentStatus.REVOKED), RequestOrigin(), clock.now()
        )
        history = await ledger.device_history(conn, app_id, device_id)
    assert len(history) == 2


def test_ledger_module_offers_no_update_or_delete() -> None:
    public = {name for name in dir(ledger) if not name.startswith("_")}
    assert not {n for n in public if "update" in n or "delete" in n or "remove" in n}
