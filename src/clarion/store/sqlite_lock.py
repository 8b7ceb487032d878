"""A cross-process write lock beside a SQLite file: writers queue on it, not in sleeps.

Two processes that share a SQLite file (two `clarion worker`s, or the API
and a worker) both start write transactions with `BEGIN IMMEDIATE`. The one
that finds the file locked is parked in SQLite's busy handler, which sleeps
1, 2, 5, 10, ... up to 100 ms between tries and never learns when the lock
was released: with two workers each committing a send job's outcomes every
few milliseconds, a waiter often slept tens of milliseconds past the
release (py-spy, 100,000 devices: one worker spent 2.4 s of a 10 s run in
`BEGIN IMMEDIATE`). Taking an exclusive `flock` on `<database>-writer.lock`
first makes every cooperating writer wait in the kernel, woken the moment
the holder lets go; SQLite's own lock is then normally free at once (a
writer that does not take this lock, or a checkpoint, still meets the busy
handler as before, so correctness never depends on this lock).

Within a process the writers already queue on an asyncio lock, so one open
file description per process is enough (flock locks belong to it, not to
a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path


class WriterFileLock:
    """An exclusive `flock` on a lock file, opened on first use (never inherited)."""

    def __init__(self, database_path: str) -> None:
        self.path = database_path + "-writer.lock"
        self._fd: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; never blocks."""
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self) -> None:
        """Take the lock, blocking this thread until it is free."""
        fcntl.flock(self._descriptor(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Blocking: for code that already runs in a thread of its own."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def held_async(self) -> AsyncIterator[None]:
        """The lock for a coroutine: taken at once if free, else waited for in a thread.

        A cancelled waiter still lets its thread finish taking the lock, then
        releases it, so the lock is never left held by nobody.
        """
        if not self.try_acquire():
            waiting = asyncio.ensure_future(asyncio.to_thread(self.acquire))
            try:
                await asyncio.shield(waiting)
            except asyncio.CancelledError:
                waiting.add_done_callback(self._release_if_taken)
                raise
        try:
            yield
        finally:
            self.release()

    def _release_if_taken(self, waiting: asyncio.Future[None]) -> None:
        if not waiting.cancelled() and waiting.exception() is None:
            self.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    if ":memory:" in url or "mode=memory" in url or "///" not in url:
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    return path or None
