"""SQLite writers of different processes queue on a flock beside the file.

Two `WriterFileLock`s on the same path are two open file descriptions, so
they exclude each other exactly as two processes would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from clarion.store.db import Database
from clarion.store.sqlite_lock import WriterFileLock, sqlite_file


def test_sqlite_file_of_urls() -> None:
    assert sqlite_file("sqlite+aiosqlite:////srv/x/clarion.db") == "/srv/x/clarion.db"
    assert sqlite_file("sqlite:///data/clarion.db?mode=rwc") == "data/clarion.db"
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_file("sqlite://") is None


async def test_a_waiter_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    holder, waiter = WriterFileLock(str(tmp_path / "db")), WriterFileLock(str(tmp_path / "db"))
    try:
        assert holder.try_acquire()
        assert not waiter.try_acquire()
        entered = asyncio.Event()

        async def wait_in_line() -> None:
            async with waiter.held_async():
                entered.set()

        task = asyncio.create_task(wait_in_line())
        await asyncio.sleep(0.05)
        assert not entered.is_set()
        holder.release()
        await asyncio.wait_for(task, 5)
        assert entered.is_set()
        assert holder.try_acquire()  # the waiter released it on leaving
        holder.release()
    finally:
        holder.close()
        waiter.close()


async def test_a_cancelled_waiter_never_leaves_the_lock_held(tmp_path: Path) -> None:
    holder, waiter = WriterFileLock(str(tmp_path / "db")), WriterFileLock(str(tmp_path / "db"))
    try:
        assert holder.try_acquire()

        async def wait_in_line() -> None:
            async with waiter.held_async():
                raise AssertionError("never entered")

        task = asyncio.create_task(wait_in_line())
        await asyncio.sleep(0.05)
        task.cancel()
        holder.release()  # the waiter's thread takes it, then gives it back
        for _ in range(500):
            if holder.try_acquire():
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the cancelled waiter kept the lock")
        holder.release()
    finally:
        holder.close()
        waiter.close()


async def test_both_write_paths_hold_the_lock_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "clarion.db"
    database = Database(f"sqlite:///{path}")
    other = WriterFileLock(str(path))
    try:
        async with database.write() as conn:
            await conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            assert not other.try_acquire()
        assert other.try_acquire()
        other.release()

        def insert(conn: sa.Connection) -> bool:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            return other.try_acquire()

        assert await database.write_sync(insert) is False
        assert other.try_acquire()
        other.release()
        # A writer of another process holding the lock only delays this one.
        assert other.try_acquire()
        blocked = asyncio.create_task(database.write_sync(insert))
        await asyncio.sleep(0.05)
        assert not blocked.done()
        other.release()
        assert await asyncio.wait_for(blocked, 5) is False
    finally:
        other.close()
        await database.dispose()
