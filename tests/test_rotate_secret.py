"""`clarion rotate-secret`: everything re-sealed, the new key stored where the old one was."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from clarion.clock import FakeClock
from clarion.config import Settings, decode_secret_key
from clarion.rotate import run_rotate_secret
from clarion.store import apps as app_store
from clarion.store import credentials
from clarion.store.db import Database
from clarion.store.migrate import migrate
from clarion.store.sealing import Sealer, SealError

SECRET = "client-secret-" + secrets.token_hex(8)


async def _store_credential(settings: Settings) -> str:
    database = Database(settings.database_url)
    try:
        await migrate(database)
        async with database.write() as conn:
            app, _, _ = await app_store.create_app(conn, name="Shop", now=FakeClock().now())
            await credentials.put_credential(
                conn,
                Sealer(settings.secret_key),
                app.id,
                "wns",
                {"client_id": "id", "client_secret": SECRET},
                public={"client_id": "id"},
                expires_at=None,
                now=FakeClock().now(),
            )
    finally:
        await database.dispose()
    return app.id


async def _open(settings: Settings, app_id: str, key: bytes) -> str:
    database = Database(settings.database_url)
    try:
        async with database.read() as conn:
            stored = await credentials.get_credential(conn, app_id, "wns")
    finally:
        await database.dispose()
    assert stored is not None
    return str(stored.open(Sealer(key))["client_secret"])


async def test_embedded_key_file_is_replaced_and_the_old_key_opens_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env({"CLARION_DATA_DIR": str(tmp_path)}, config_file=None)
    old_key = settings.secret_key
    app_id = await _store_credential(settings)
    assert await run_rotate_secret(settings, None) == 0
    new_key = decode_secret_key((tmp_path / "secret.key").read_text())
    assert new_key != old_key
    assert decode_secret_key((tmp_path / "secret.key.old").read_text()) == old_key
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert await _open(settings, app_id, new_key) == SECRET
    with pytest.raises(SealError):
        await _open(settings, app_id, old_key)
    output = capsys.readouterr().out
    assert "re-sealed 1 credential" in output
    assert base64.urlsafe_b64encode(new_key).decode() not in output


async def test_key_from_the_environment_gets_the_new_key_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    environ = {"CLARION_DATA_DIR": str(tmp_path), "CLARION_SECRET_KEY": old_text}
    settings = Settings.from_env(environ, config_file=None)
    app_id = await _store_credential(settings)
    new_text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    assert await run_rotate_secret(settings, new_text) == 0
    assert f"new secret key: {new_text}" in capsys.readouterr().out
    assert not (tmp_path / "secret.key").exists()
    assert await _open(settings, app_id, decode_secret_key(new_text)) == SECRET
