"""Provider credentials per (app, provider): sealed configuration plus its state.

The sealed column holds the configuration encrypted by `clarion.store.sealing`
(bound to the app and provider); `public` holds the redacted view the API
shows (no secret in it), so reading it never needs the secret key. State is
`status` (`ok` or `failing`), the last error and when it happened, and the
expiry of a certificate when there is one.

Detecting a change (for the send pipeline): every write of the credential
itself (`put_credential`) increments `version`; a credential deleted and put
again gets a new `id`. `StoredCredential.revision` (`"<id>.<version>"`)
therefore changes whenever the configuration changes and never otherwise.
A consumer keeps the revision its provider was built from and, before each
batch, reads `revision(conn, app_id, provider)` (one primary-key lookup):
a different revision means build a new provider and close the old one's
transport; `None` means the credential was deleted. Recording a failure or a
success (`record_failure`, `record_ok`) and re-sealing under a new secret key
(`reseal`) leave the revision alone: the configuration is the same, so the
client built from it stays valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.model.ids import new_id
from clarion.store.schema import provider_credentials as table
from clarion.store.sealing import Sealer

STATUS_OK = "ok"
STATUS_FAILING = "failing"
MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """One app's credential for one provider, still sealed."""

    app_id: str
    provider: str
    id: str
    sealed: bytes = field(repr=False)
    key_id: str
    public: Mapping[str, Any]
    status: str
    last_error: str | None
    last_error_at: datetime | None
    expires_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def revision(self) -> str:
        """Changes exactly when the configuration changes (see the module docstring)."""
        return f"{self.id}.{self.version}"

    def open(self, sealer: Sealer) -> dict[str, Any]:
        """The configuration in clear; `SealError` if it is not this row's value."""
        return sealer.open_json(self.sealed, app_id=self.app_id, provider=self.provider)


def _stored(row: sa.Row[Any]) -> StoredCredential:
    return StoredCredential(
        app_id=row.app_id,
        provider=row.provider,
        id=row.id,
        sealed=bytes(row.sealed),
        key_id=row.key_id,
        public=row.public,
        status=row.status,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        expires_at=row.expires_at,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _where(app_id: str, provider: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.app_id == app_id, table.c.provider == provider)


async def put_credential(
    conn: AsyncConnection,
    sealer: Sealer,
    app_id: str,
    provider: str,
    config: Mapping[str, Any],
    *,
    public: Mapping[str, Any],
    expires_at: datetime | None,
    now: datetime,
) -> StoredCredential:
    """Seal `config` and store it, replacing any previous one (state back to `ok`)."""
    sealed = sealer.seal_json(config, app_id=app_id, provider=provider)
    values: dict[str, Any] = {
        "sealed": sealed,
        "key_id": sealer.key_id.hex(),
        "public": dict(public),
        "status": STATUS_OK,
        "last_error": None,
        "last_error_at": None,
        "expires_at": expires_at,
        "updated_at": now,
    }
    changed = await conn.execute(
        table.update().where(_where(app_id, provider)).values(**values, version=table.c.version + 1)
    )
    if changed.rowcount == 0:
        await conn.execute(
            table.insert().values(
                app_id=app_id,
                provider=provider,
                id=new_id("crd"),
                version=1,
                created_at=now,
                **values,
            )
        )
    stored = await get_credential(conn, app_id, provider)
    if stored is None:
        raise RuntimeError("a credential vanished inside its own transaction")
    return stored


async def get_credential(
    conn: AsyncConnection, app_id: str, provider: str
) -> StoredCredential | None:
    row = (await conn.execute(table.select().where(_where(app_id, provider)))).first()
    return _stored(row) if row else None


async def list_credentials(conn: AsyncConnection, app_id: str) -> list[StoredCredential]:
    rows = await conn.execute(
        table.select().where(table.c.app_id == app_id).order_by(table.c.provider)
    )
    return [_stored(row) for row in rows]


async def delete_credential(conn: AsyncConnection, app_id: str, provider: str) -> bool:
    """Remove the credential; False when there was none."""
    result = await conn.execute(table.delete().where(_where(app_id, provider)))
    return result.rowcount > 0


async def revision(conn: AsyncConnection, app_id: str, provider: str) -> str | None:
    """The credential's current revision, or None when it does not exist."""
    row = (
        await conn.execute(sa.select(table.c.id, table.c.version).where(_where(app_id, provider)))
    ).first()
    return f"{row.id}.{row.version}" if row else None


async def record_failure(
    conn: AsyncConnection, app_id: str, provider: str, error: str, now: datetime
) -> None:
    """Mark the credential `failing` with `error` (which must not contain secrets)."""
    await conn.execute(
        table.update()
        .where(_where(app_id, provider))
        .values(status=STATUS_FAILING, last_error=error[:MAX_ERROR], last_error_at=now)
    )


async def record_ok(conn: AsyncConnection, app_id: str, provider: str) -> None:
    """Mark the credential `ok` again; the last error stays for the record."""
    await conn.execute(
        table.update()
        .where(_where(app_id, provider), table.c.status != STATUS_OK)
        .values(status=STATUS_OK)
    )


async def sealed_values(conn: AsyncConnection) -> list[tuple[str, str, bytes]]:
    """Every `(app_id, provider, sealed)` of every app: what rotation re-seals."""
    rows = await conn.execute(
        sa.select(table.c.app_id, table.c.provider, table.c.sealed).order_by(
            table.c.app_id, table.c.provider
        )
    )
    return [(row.app_id, row.provider, bytes(row.sealed)) for row in rows]


async def reseal(
    conn: AsyncConnection, app_id: str, provider: str, sealed: bytes, key_id: str
) -> None:
    """Replace the sealed bytes with the same configuration under another key."""
    await conn.execute(
        table.update().where(_where(app_id, provider)).values(sealed=sealed, key_id=key_id)
    )
