"""SQLite's writer thread commits without checkpointing; a second thread checkpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from clarion.store import sqlite_writer
from clarion.store.db import Database

ROWS = 6000  # about 6 MB, 1,500 pages: past SQLite's automatic checkpoint at 1,000


def _fill(conn: sa.Connection) -> int:
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (payload TEXT NOT NULL)")
    conn.exec_driver_sql(
        "INSERT INTO filler (payload) SELECT printf('%.1000c', 'x') FROM "
        f"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) "
        "SELECT i FROM n)"
    )
    return int(conn.exec_driver_sql("SELECT count(*) FROM filler").scalar_one())


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_the_writer_leaves_the_checkpoint_to_its_own_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clarion.db"
    database = Database(f"sqlite:///{path}")
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_INTERVAL", 3600.0)
    try:
        assert await database.write_sync(_fill) == ROWS
        before = _size(path)
        assert before < 1_000_000  # the commit left its pages in the WAL
        monkeypatch.setattr(sqlite_writer, "CHECKPOINT_INTERVAL", 0.0)
        assert await database.write_sync(_fill) == 2 * ROWS
        for _ in range(200):
            if _size(path) > before + 1_000_000:
                break
            await asyncio.sleep(0.01)
        assert _size(path) > before + 1_000_000  # the checkpoint thread copied them
        async with database.read() as conn:
            count = await conn.execute(sa.text("SELECT count(*) FROM filler"))
            assert count.scalar_one() == 2 * ROWS
    finally:
        await database.dispose()
