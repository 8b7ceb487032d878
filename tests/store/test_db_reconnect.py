"""A PostgreSQL connection that dies in the pool costs at most one transaction, never the pool.

No ping on a busy connection's checkout (`pool_pre_ping` was a round trip per
transaction): a backend killed while its connection was pooled fails the
next transaction that gets it at most once, and the one after works. A
connection idle for `PING_AFTER_IDLE` is pinged and replaced unseen.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from clarion.store import db as db_module
from clarion.store.db import Database


async def _pooled_pids(database: Database, count: int) -> list[int]:
    """Open `count` connections at once and return them to the pool; their backend pids."""
    pids: list[int] = []
    conns = [await database.engine.connect() for _ in range(count)]
    for conn in conns:
        pids.append((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())
        await conn.close()
    return pids


async def _terminate(database: Database, pids: list[int]) -> None:
    admin = Database(database.url, pool_size=1)
    try:
        async with admin.read() as conn:
            for pid in pids:
                await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()


async def _select_one(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(sa.text("SELECT 1"))).scalar_one())


async def test_a_killed_backend_fails_one_transaction_then_the_pool_recovers(
    database: Database,
) -> None:
    if database.is_sqlite:
        pytest.skip("PostgreSQL connections only")
    pids = await _pooled_pids(database, 3)
    await _terminate(database, pids)
    failures = 0
    for _ in range(2):
        try:
            assert await _select_one(database) == 1
        except sa.exc.DBAPIError as exc:
            assert exc.connection_invalidated
            failures += 1
    assert failures <= 1
    assert await _select_one(database) == 1
    assert await _select_one(database) == 1


async def test_an_idle_connection_is_checked_and_replaced_unseen(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.is_sqlite:
        pytest.skip("PostgreSQL connections only")
    pids = await _pooled_pids(database, 3)
    await _terminate(database, pids)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)
    for _ in range(4):
        assert await _select_one(database) == 1
