"""The database handle: one async engine, SQLite or PostgreSQL, same code.

SQLite runs in WAL mode with a busy timeout; write transactions start with
`BEGIN IMMEDIATE` so two writers queue on the lock instead of failing when
one upgrades from reading to writing. Within one process, writers also queue
on an asyncio lock before they touch SQLite: SQLite's own busy handler backs
off in sleeps of up to 100 ms, which under many concurrent requests costs far
more than waiting in line. Processes sharing the file queue on a `flock`
beside it (`clarion.store.sqlite_lock`), woken as soon as it is released.
A transaction of many statements can run whole in a writer thread
(`write_sync`, `clarion.store.sqlite_writer`): aiosqlite hops to its thread
and back for every statement.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from clarion.store.sqlite_lock import WriterFileLock, sqlite_file
from clarion.store.sqlite_writer import SqliteWriter

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
PING_AFTER_IDLE = 5.0
"""Seconds a pooled PostgreSQL connection may sit unused before it is checked on checkout."""


def async_url(url: str) -> str:
    """The SQLAlchemy URL with the async driver: aiosqlite or asyncpg."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    for prefix in ("postgresql:", "postgres:"):
        if url.startswith(prefix):
            return "postgresql+asyncpg:" + url.removeprefix(prefix)
    return url


class Database:
    """Owns the engine; hands out read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        target = async_url(url)
        options: dict[str, Any] = {}
        if target.startswith("sqlite"):
            _ensure_sqlite_dir(target)
        else:
            options.update(pool_size=pool_size, max_overflow=pool_size)
        self.engine: AsyncEngine = create_async_engine(target, **options)
        if not target.startswith("sqlite"):
            _ping_after_idle(self.engine.sync_engine)
        self._writer = asyncio.Lock()
        self.dialect = self.engine.dialect.name
        self._sync_writer: SqliteWriter | None = None
        self._file_lock: WriterFileLock | None = None
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine.sync_engine)
            path = sqlite_file(target)
            self._file_lock = WriterFileLock(path) if path else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that will write; committed on success."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        held = self._file_lock.held_async() if self._file_lock else nullcontext()
        async with self._writer, held, self.engine.connect() as conn:
            await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with conn.begin():
                yield conn

    async def write_sync(self, work: Callable[[sa.Connection], T]) -> T:
        """Run `work` in one write transaction on a synchronous connection.

        For a transaction of many statements: on SQLite (a file) `work` runs
        whole in this database's writer thread, one hop for the transaction
        instead of one per statement through aiosqlite, queued on the same
        in-process lock as `write()`. Elsewhere it runs under
        `AsyncConnection.run_sync` (on PostgreSQL, asyncpg underneath).
        """
        writer = self._sqlite_writer()
        if writer is None:
            async with self.write() as conn:
                return await conn.run_sync(work)
        async with self._writer:
            return await writer.run(work)

    def _sqlite_writer(self) -> SqliteWriter | None:
        if not self.is_sqlite or ":memory:" in self.url or "mode=memory" in self.url:
            return None
        if self._sync_writer is None:
            engine = sa.create_engine(self.engine.url.set(drivername="sqlite"))
            _configure_sqlite(engine)
            self._sync_writer = SqliteWriter(engine, self._file_lock)
        return self._sync_writer

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync_writer is not None:
            await self._sync_writer.close()
            self._sync_writer = None
        if self._file_lock is not None:
            self._file_lock.close()


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path.split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)


def _ping_after_idle(sync_engine: sa.Engine) -> None:
    """Check a pooled connection before use only when it sat idle (`pool_pre_ping`, cheaper).

    `pool_pre_ping` costs a round trip on every checkout, one per transaction:
    under load that was most of the database's work for a short transaction.
    Connections that die do so mostly while idle (a server restart, a
    firewall's idle timeout), so only a connection unused for
    `PING_AFTER_IDLE` seconds is pinged; a dead one is replaced before the
    caller sees it. One that died while in busy use fails its transaction
    once (the worker retries jobs; an API client gets a 500), and SQLAlchemy
    then invalidates every connection of the pool opened before the failure.
    """

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(dbapi_connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: Any
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            alive = sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError("the pooled connection is gone") from exc
        if not alive:
            raise sa.exc.DisconnectionError("the pooled connection is gone")


def _configure_sqlite(sync_engine: sa.Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
