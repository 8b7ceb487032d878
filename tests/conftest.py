"""Fixtures shared by the whole suite: the store on both backends, a fake clock.

PostgreSQL tests use a database created for this test run (migrated once,
tables truncated before each test). Where no PostgreSQL answers they skip
with a message, except when CLARION_TEST_REQUIRE_POSTGRES=1 (CI), where
they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from clarion.clock import FakeClock
from clarion.store.db import Database
from clarion.store.migrate import migrate
from clarion.store.schema import metadata

POSTGRES_ADMIN_URL = os.environ.get(
    "CLARION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("CLARION_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgres"]


async def _admin(statement: str) -> None:
    database = Database(POSTGRES_ADMIN_URL, pool_size=1)
    try:
        async with database.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(statement))
    finally:
        await database.dispose()


async def _migrate_url(url: str) -> None:
    database = Database(url)
    try:
        await migrate(database)
    finally:
        await database.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A migrated PostgreSQL database for this run, or None when none is reachable."""
    name = f"clarion_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        if REQUIRE_POSTGRES:
            raise RuntimeError(f"PostgreSQL is required here but unreachable: {exc}") from exc
        yield None
        return
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_migrate_url(url))
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "clarion.db"
    asyncio.run(_migrate_url(f"sqlite:///{path}"))
    return path


TABLES = ", ".join(table.name for table in reversed(metadata.sorted_tables))


@pytest.fixture(params=BACKENDS)
async def database(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_url: str | None,
) -> AsyncIterator[Database]:
    """A fresh, migrated store: SQLite in a temp dir, then the real PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "clarion.db"
        shutil.copy(sqlite_template, path)
        db = Database(f"sqlite:///{path}")
    else:
        if postgres_url is None:
            pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable; its tests are skipped")
        db = Database(postgres_url, pool_size=5)
        async with db.engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    yield db
    await db.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
