"""Credential rows on both backends: sealed at rest, revisions, state, rotation."""

import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from clarion.clock import FakeClock
from clarion.store import apps as app_store
from clarion.store import credentials
from clarion.store.db import Database
from clarion.store.rotation import rotate_secret
from clarion.store.schema import provider_credentials
from clarion.store.sealing import Sealer, SealError

KEY = secrets.token_bytes(32)
PLAINTEXT = "-----BEGIN PRIVATE KEY-----MIGHAgEAMBMGByqGSM49plaintext-marker"


async def _app(database: Database, clock: FakeClock, name: str = "Shop") -> str:
    async with database.write() as conn:
        app, _, _ = await app_store.create_app(conn, name=name, now=clock.now())
    return app.id


async def _put(database: Database, clock: FakeClock, app_id: str, sealer: Sealer) -> str:
    async with database.write() as conn:
        stored = await credentials.put_credential(
            conn,
            sealer,
            app_id,
            "apns",
            {"private_key": PLAINTEXT, "key_id": "ABC"},
            public={"key_id": "ABC", "private_key": "[redacted]"},
            expires_at=None,
            now=clock.now(),
        )
    return stored.revision


async def test_credential_is_stored_sealed_and_opens(database: Database, clock: FakeClock) -> None:
    sealer = Sealer(KEY)
    app_id = await _app(database, clock)
    await _put(database, clock, app_id, sealer)
    async with database.read() as conn:
        stored = await credentials.get_credential(conn, app_id, "apns")
        raw = (await conn.execute(sa.select(provider_credentials.c.sealed))).scalar_one()
    assert stored is not None
    assert PLAINTEXT.encode() not in bytes(raw)
    assert stored.open(sealer)["private_key"] == PLAINTEXT
    assert stored.status == "ok" and stored.version == 1


async def test_sqlite_file_holds_no_plaintext_key_material(
    tmp_path: Path, clock: FakeClock
) -> None:
    from clarion.store.migrate import migrate

    path = tmp_path / "grep.db"
    database = Database(f"sqlite:///{path}")
    try:
        await migrate(database)
        app_id = await _app(database, clock)
        await _put(database, clock, app_id, Sealer(KEY))
    finally:
        await database.dispose()
    contents = _read_database_files(tmp_path, "grep.db")
    assert b"ABC" in contents  # the public view is there ...
    assert b"plaintext-marker" not in contents  # ... the secret is not


def _read_database_files(directory: Path, prefix: str) -> bytes:
    """The database file with its WAL and shared-memory files, as raw bytes."""
    files = [p for p in directory.iterdir() if p.name.startswith(prefix)]
    return b"".join(p.read_bytes() for p in files)


async def test_value_copied_to_another_apps_row_fails_to_open(
    database: Database, clock: FakeClock
) -> None:
    sealer = Sealer(KEY)
    shop = await _app(database, clock, "Shop")
    other = await _app(database, clock, "Other")
    await _put(database, clock, shop, sealer)
    await _put(database, clock, other, sealer)
    async with database.write() as conn:
        stolen = await credentials.get_credential(conn, shop, "apns")
        assert stolen is not None
        await conn.execute(
            provider_credentials.update()
            .where(provider_credentials.c.app_id == other)
            .values(sealed=stolen.sealed)
        )
        moved = await credentials.get_credential(conn, other, "apns")
    assert moved is not None
    with pytest.raises(SealError):
        moved.open(sealer)


async def test_revision_changes_on_every_put_and_after_delete(
    database: Database, clock: FakeClock
) -> None:
    sealer = Sealer(KEY)
    app_id = await _app(database, clock)
    first = await _put(database, clock, app_id, sealer)
    second = await _put(database, clock, app_id, sealer)
    assert first != second
    async with database.write() as conn:
        assert await credentials.revision(conn, app_id, "apns") == second
        assert await credentials.delete_credential(conn, app_id, "apns")
        assert await credentials.revision(conn, app_id, "apns") is None
        assert not await credentials.delete_credential(conn, app_id, "apns")
    third = await _put(database, clock, app_id, sealer)
    assert third not in (first, second)


async def test_failure_state_is_recorded_without_changing_the_revision(
    database: Database, clock: FakeClock
) -> None:
    sealer = Sealer(KEY)
    app_id = await _app(database, clock)
    before = await _put(database, clock, app_id, sealer)
    async with database.write() as conn:
        await credentials.record_failure(conn, app_id, "apns", "InvalidProviderToken", clock.now())
        failing = await credentials.get_credential(conn, app_id, "apns")
        await credentials.record_ok(conn, app_id, "apns")
        recovered = await credentials.get_credential(conn, app_id, "apns")
    assert failing is not None and recovered is not None
    assert failing.status == "failing" and failing.last_error == "InvalidProviderToken"
    assert failing.last_error_at == clock.now()
    assert recovered.status == "ok" and recovered.revision == before


async def test_rotation_reseals_everything_and_old_key_no_longer_opens(
    database: Database, clock: FakeClock
) -> None:
    old, new_key = Sealer(KEY), secrets.token_bytes(32)
    apps = [await _app(database, clock, f"App {n}") for n in range(3)]
    revisions = [await _put(database, clock, app_id, old) for app_id in apps]
    report = await rotate_secret(database, KEY, new_key)
    assert (report.resealed, report.already_current) == (3, 0)
    new = Sealer(new_key)
    async with database.read() as conn:
        for app_id, rev in zip(apps, revisions, strict=True):
            stored = await credentials.get_credential(conn, app_id, "apns")
            assert stored is not None
            assert stored.open(new)["private_key"] == PLAINTEXT
            assert stored.key_id == new.key_id.hex()
            assert stored.revision == rev
            with pytest.raises(SealError):
                stored.open(old)
    again = await rotate_secret(database, KEY, new_key)
    assert (again.resealed, again.already_current) == (0, 3)


async def test_rotation_with_the_wrong_old_key_changes_nothing(
    database: Database, clock: FakeClock
) -> None:
    app_id = await _app(database, clock)
    await _put(database, clock, app_id, Sealer(KEY))
    with pytest.raises(SealError, match=app_id):
        await rotate_secret(database, secrets.token_bytes(32), secrets.token_bytes(32))
    async with database.read() as conn:
        stored = await credentials.get_credential(conn, app_id, "apns")
    assert stored is not None and stored.open(Sealer(KEY))["private_key"] == PLAINTEXT


async def test_rotation_reseals_webhook_secrets_too(database: Database, clock: FakeClock) -> None:
    from clarion.store import webhooks

    app_id = await _app(database, clock)
    async with database.write() as conn:
        hook, secret = await webhooks.create_webhook(
            conn, app_id, "https://hooks.example.com/x", ["*"], Sealer(KEY), clock.now()
        )
    new_key = secrets.token_bytes(32)
    report = await rotate_secret(database, KEY, new_key)
    assert report.resealed == 1
    async with database.read() as conn:
        found = await webhooks.webhook_secret(conn, app_id, hook.id, Sealer(new_key))
        assert found is not None and found[1] == secret
        with pytest.raises(SealError):
            await webhooks.webhook_secret(conn, app_id, hook.id, Sealer(KEY))
