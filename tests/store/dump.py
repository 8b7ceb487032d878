"""Read every row of every table as text, to prove what the store does not hold."""

from __future__ import annotations

import sqlalchemy as sa

from clarion.store.db import Database
from clarion.store.schema import metadata


async def dump_database(database: Database) -> str:
    """Every table's rows, every value rendered with repr, one line per row."""
    lines = []
    async with database.read() as conn:
        names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        for name in sorted(names):
            table = metadata.tables.get(name)
            query = sa.select(table) if table is not None else sa.text(f'SELECT * FROM "{name}"')
            for row in await conn.execute(query):
                lines.append(f"{name}: " + " | ".join(repr(value) for value in row))
    return "\n".join(lines)
