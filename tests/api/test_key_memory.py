"""A process remembers keys and apps briefly; a revocation still takes effect."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from clarion.clock import FakeClock
from clarion.store.db import Database
from clarion.store.schema import api_keys
from tests.api.conftest import AppKeys
from tests.api.factories import registration


async def _register_status(api: httpx.AsyncClient, shop: AppKeys, key: str) -> int:
    response = await api.post(
        f"/v1/apps/{shop.id}/devices",
        json=registration("fcm"),
        headers={"authorization": f"Bearer {key}"},
    )
    return response.status_code


async def test_key_revoked_through_this_process_is_refused_at_once(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    created = await api.post(
        f"/v1/apps/{shop.id}/keys", json={"role": "client"}, headers=shop.server()
    )
    key = created.json()
    assert await _register_status(api, shop, key["key"]) == 201  # now remembered
    revoked = await api.delete(f"/v1/apps/{shop.id}/keys/{key['id']}", headers=shop.server())
    assert revoked.status_code == 204
    assert await _register_status(api, shop, key["key"]) == 401


async def test_key_revoked_by_another_process_is_refused_within_the_ttl(
    api: httpx.AsyncClient, shop: AppKeys, database: Database, clock: FakeClock
) -> None:
    assert await _register_status(api, shop, shop.client_key) == 201
    # Another process (a second API process, the CLI) revokes: this one is not told.
    async with database.write() as conn:
        await conn.execute(
            sa.update(api_keys)
            .where(api_keys.c.app_id == shop.id, api_keys.c.role == "client")
            .values(revoked_at=clock.now())
        )
    clock.advance(1.0)  # the default CLARION_AUTH_CACHE_TTL
    assert await _register_status(api, shop, shop.client_key) == 401


async def test_unknown_key_is_not_remembered_so_a_new_key_works_at_once(
    api: httpx.AsyncClient, shop: AppKeys, database: Database
) -> None:
    assert await _register_status(api, shop, "clr_cli_not-yet-a-key") == 401
    created = await api.post(
        f"/v1/apps/{shop.id}/keys", json={"role": "client"}, headers=shop.server()
    )
    assert await _register_status(api, shop, created.json()["key"]) == 201
