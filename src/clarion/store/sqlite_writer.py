"""Whole SQLite write transactions in one thread; WAL checkpoints in another.

aiosqlite hops to its thread and back for every statement (and the cursor,
and the fetch); a batch of registrations is a dozen hops. Here the batch runs
as plain synchronous SQLAlchemy in one writer thread: one hop per transaction.
The thread takes the database's cross-process `WriterFileLock` (if given)
around each transaction, as `Database.write` does.

In WAL mode the connection whose commit pushes the log past 1,000 pages
checkpoints it there and then, copying pages into the database and syncing
it to disk: that commit took tens of milliseconds more, and every request
queued behind it waited too. The writer's connection therefore never
checkpoints; a second thread runs a passive checkpoint (which neither waits
for nor blocks writers) at most every `CHECKPOINT_INTERVAL` seconds after
writes. Connections of the async engine keep SQLite's automatic checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event

from clarion.store.sqlite_lock import WriterFileLock

T = TypeVar("T")

CHECKPOINT_INTERVAL = 0.5

log = logging.getLogger(__name__)


class SqliteWriter:
    """Runs write transactions on a synchronous engine of the same database file."""

    def __init__(self, engine: sa.Engine, file_lock: WriterFileLock | None = None) -> None:
        self._engine = engine
        self._file_lock = file_lock
        event.listen(engine, "connect", _no_automatic_checkpoint)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="clarion-sqlite-writer")
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="clarion-sqlite-checkpoint")
        self._checkpoint: Future[None] | None = None
        self._last_checkpoint = time.monotonic()

    async def run(self, work: Callable[[sa.Connection], T]) -> T:
        """`work` in one `BEGIN IMMEDIATE` transaction, committed on success.

        The caller holds the process's writer lock; this returns only once
        the thread is done with the database, even when cancelled.
        """
        done = asyncio.get_running_loop().run_in_executor(self._writer, self._transaction, work)
        try:
            result = await asyncio.shield(done)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await done
            raise
        self._checkpoint_soon()
        return result

    def _transaction(self, work: Callable[[sa.Connection], T]) -> T:
        held = self._file_lock.held() if self._file_lock else contextlib.nullcontext()
        with held, self._engine.connect() as plain:
            conn = plain.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                return work(conn)

    def _checkpoint_soon(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        if time.monotonic() - self._last_checkpoint < CHECKPOINT_INTERVAL:
            return
        self._last_checkpoint = time.monotonic()
        self._checkpoint = self._checkpointer.submit(self._passive_checkpoint)

    def _passive_checkpoint(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except sa.exc.DBAPIError:
            # Checkpoints are housekeeping: the next one (or SQLite on close) catches up.
            log.warning("WAL checkpoint failed", exc_info=True)

    async def close(self) -> None:
        """Wait for the threads, then close the engine's connections."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._checkpointer.shutdown)
        await loop.run_in_executor(None, self._writer.shutdown)
        self._engine.dispose()


def _no_automatic_checkpoint(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
