from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from clarion.store.db import Database
from clarion.store.migrate import migrate
from clarion.store.schema import metadata


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, metadata))


async def test_migrations_build_exactly_the_declared_schema(database: Database) -> None:
    async with database.engine.connect() as conn:
        differences = await conn.run_sync(_diff)
    assert differences == []


async def test_migrating_twice_changes_nothing(database: Database) -> None:
    await migrate(database)
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
