"""Re-seal every sealed secret under a new secret key (`clarion rotate-secret`).

That is every provider credential and every webhook signing secret.

All credentials are re-sealed in one write transaction: either every row is
under the new key afterwards, or (on any error) none changed. A value that
opens with neither the old nor the new key stops the rotation with a
`SealError` naming the app and provider, rather than leaving it behind
unreadable. Values already under the new key are skipped, so running the
rotation again after an interruption is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store import credentials, webhooks
from clarion.store.db import Database
from clarion.store.sealing import Sealer, SealError


@dataclass(frozen=True, slots=True)
class RotationReport:
    """How many credentials were re-sealed, and how many already were under the new key."""

    resealed: int
    already_current: int


async def rotate_secret(database: Database, old_key: bytes, new_key: bytes) -> RotationReport:
    """Open each credential with `old_key` (or `new_key`) and seal it under `new_key`."""
    sealer = Sealer(new_key, previous=[old_key])
    resealed = current = 0
    async with database.write() as conn:
        for app_id, provider, sealed in await credentials.sealed_values(conn):
            if sealer.is_current(sealed):
                current += 1
                continue
            try:
                plaintext = sealer.open(sealed, app_id=app_id, provider=provider)
            except SealError as exc:
                raise SealError(f"credential of app {app_id}, provider {provider}: {exc}") from exc
            fresh = sealer.seal(plaintext, app_id=app_id, provider=provider)
            await credentials.reseal(conn, app_id, provider, fresh, sealer.key_id.hex())
            resealed += 1
        for app_id, webhook_id, sealed in await webhooks.sealed_secrets(conn):
            purpose = webhooks.sealing_purpose(webhook_id)
            if sealer.is_current(sealed):
                current += 1
                continue
            try:
                plaintext = sealer.open(sealed, app_id=app_id, provider=purpose)
            except SealError as exc:
                raise SealError(f"webhook {webhook_id} of app {app_id}: {exc}") from exc
            fresh = sealer.seal(plaintext, app_id=app_id, provider=purpose)
            await webhooks.reseal_secret(conn, app_id, webhook_id, fresh)
            resealed += 1
    return RotationReport(resealed, current)
