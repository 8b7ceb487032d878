"""`clarion rotate-secret`: re-seal every provider credential under a new secret key.

Where the new key goes follows where the current one lives. When the
settings read it from `<data_dir>/secret.key` (the embedded default), the new
key is written there (mode 0600) after the re-seal committed, and the old key
is kept next to it as `secret.key.old` until the operator deletes it. When it
came from `CLARION_SECRET_KEY` (or clarion.toml), Clarion cannot change that
source: it prints the new key, to be put there before the next start. The key
is written to `secret.key.new` before the database changes, so a crash in
between never leaves credentials sealed under a key stored nowhere.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from clarion.config import Settings, decode_secret_key
from clarion.store.db import Database
from clarion.store.migrate import migrate
from clarion.store.rotation import rotate_secret


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text + "\n")


def _key_file(settings: Settings) -> Path | None:
    """`secret.key` when the current key was read from it, else None."""
    path = settings.data_dir / "secret.key"
    try:
        stored = decode_secret_key(path.read_text())
    except (OSError, ValueError):
        return None
    return path if stored == settings.secret_key else None


async def run_rotate_secret(settings: Settings, new_key_text: str | None) -> int:
    """Re-seal everything; store or print the new key as explained above."""
    new_text = new_key_text or base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    new_key = decode_secret_key(new_text)
    if new_key == settings.secret_key:
        print("the new key is the current key; nothing to do")
        return 1
    key_file = _key_file(settings)
    pending = settings.data_dir / "secret.key.new"
    if key_file is not None:
        _write_private(pending, new_text)
    database = Database(settings.database_url)
    try:
        if settings.is_sqlite:
            await migrate(database)
        report = await rotate_secret(database, settings.secret_key, new_key)
    finally:
        await database.dispose()
    print(f"re-sealed {report.resealed} credential(s); {report.already_current} already current")
    if key_file is None:
        print(f"new secret key: {new_text}")
        print("set CLARION_SECRET_KEY to it before the next start; the old key opens nothing now")
        return 0
    old = key_file.with_name("secret.key.old")
    _write_private(old, key_file.read_text().strip())
    pending.replace(key_file)
    print(f"new secret key stored in {key_file} (the old one is in {old}; delete it when done)")
    return 0
