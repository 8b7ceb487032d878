"""Group commit: concurrent writes of one kind share one transaction.

On SQLite every write transaction waits for the one writer lock, and every
statement is a hop to aiosqlite's thread and back; a device registration
alone spent most of its time queueing for the lock. Here a caller queues its
item and awaits its own result; one task drains the queue, taking every item
waiting (up to `max_batch`) into one transaction written by a function that
handles a whole batch in a few statements (on SQLite, in the writer thread:
`Database.write_sync`). Items that arrive while a batch is
being written form the next one, so batches grow with the load and the cost
of a transaction (BEGIN, COMMIT, the lock) is paid once per batch.

If a batch fails, each of its items is written again alone, so a bad item
fails only its own caller. Items with the same `key` are never written at
the same time. `concurrency` batches may be in flight at once: one on
SQLite (its writes queue anyway), a few on PostgreSQL, where a batch spends
most of its time waiting for round trips and the commit's flush.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import sqlalchemy as sa

from clarion.store.db import Database

T = TypeVar("T")
R = TypeVar("R")

WriteBatch = Callable[[sa.Connection, Sequence[T]], list[R]]
"""Writes a batch inside the given transaction (`Database.write_sync`); one result
per item, in order."""


class GroupCommit(Generic[T, R]):
    """Queues items and writes them in batches through `write` (see the module)."""

    def __init__(
        self,
        database: Database,
        write: WriteBatch[T, R],
        *,
        key: Callable[[T], Hashable],
        max_batch: int = 256,
        concurrency: int = 1,
    ) -> None:
        self._database = database
        self._write = write
        self._key = key
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._drainers: set[asyncio.Task[None]] = set()
        self._writing: set[Hashable] = set()
        self.batches = 0
        """Transactions written so far (the mean batch size is items / batches)."""

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is waiting; its own result or exception."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        # A drainer that has finished may still be in the set until its callback runs.
        if sum(not drainer.done() for drainer in self._drainers) < self._concurrency:
            drainer = asyncio.create_task(self._drain())
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queue:
                batch = self._take()
                if not batch:
                    return  # what waits has a key being written: its writer takes it next
                keys = {self._key(item) for item, _ in batch}
                self._writing |= keys
                try:
                    await self._write_batch(batch)
                finally:
                    self._writing -= keys
        except asyncio.CancelledError:
            # Shutdown: nobody will write for the callers still waiting.
            stopped = RuntimeError("the store is shutting down")
            for _, future in [*batch, *self._queue]:
                _settle(future, stopped)
            self._queue.clear()
            raise

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The next batch: waiting items in order, callers still waiting, one per key
        and none whose key another batch is writing."""
        batch: list[tuple[T, asyncio.Future[R]]] = []
        later: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        while self._queue and len(batch) < self._max_batch:
            entry = self._queue.popleft()
            if entry[1].done():  # the caller was cancelled
                continue
            key = self._key(entry[0])
            if key in keys or key in self._writing:
                later.append(entry)
            else:
                keys.add(key)
                batch.append(entry)
        self._queue.extendleft(reversed(later))
        return batch

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._transaction([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for item, future in batch:
                try:
                    (result,) = await self._transaction([item])
                except Exception as alone:
                    _settle(future, alone)
                else:
                    _settle(future, result)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    async def _transaction(self, items: list[T]) -> list[R]:
        write = self._write
        results = await self._database.write_sync(lambda conn: write(conn, items))
        self.batches += 1
        return results


def _settle(future: asyncio.Future[R], outcome: R | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
