"""Group commit: one transaction for what arrives together; a bad item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import sqlalchemy as sa

from clarion.store.db import Database
from clarion.store.group_commit import GroupCommit

NOTES = sa.table("group_commit_notes", sa.column("name"))


@pytest.fixture
async def notes(database: Database) -> AsyncIterator[Database]:
    """The store with a scratch table (dropped after: PostgreSQL's database is shared)."""
    async with database.write() as conn:
        await conn.execute(sa.text("CREATE TABLE group_commit_notes (name VARCHAR(40) NOT NULL)"))
    yield database
    async with database.write() as conn:
        await conn.execute(sa.text("DROP TABLE group_commit_notes"))


async def _names(database: Database) -> list[str]:
    async with database.read() as conn:
        rows = await conn.execute(sa.select(NOTES.c.name).order_by(NOTES.c.name))
        return [row.name for row in rows]


def _write(conn: sa.Connection, names: Sequence[str]) -> list[str]:
    for name in names:
        if name.startswith("bad"):
            raise ValueError(f"{name} is refused")
    conn.execute(NOTES.insert(), [{"name": name} for name in names])
    return [name.upper() for name in names]


async def test_items_arriving_together_share_one_transaction(notes: Database) -> None:
    group = GroupCommit(notes, _write, key=lambda name: name)
    names = [f"n{i:02}" for i in range(30)]
    results = await asyncio.gather(*[group.submit(name) for name in names])
    assert results == [name.upper() for name in names]
    assert group.batches < 30
    assert await _names(notes) == names


async def test_a_failing_item_fails_only_its_own_caller(notes: Database) -> None:
    group = GroupCommit(notes, _write, key=lambda name: name)
    outcomes = await asyncio.gather(
        group.submit("a"), group.submit("bad-b"), group.submit("c"), return_exceptions=True
    )
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], ValueError)
    assert await _names(notes) == ["a", "c"]


async def test_items_with_the_same_key_go_in_separate_batches(database: Database) -> None:
    seen: list[list[str]] = []

    def record(conn: sa.Connection, names: Sequence[str]) -> list[str]:
        seen.append(list(names))
        return list(names)

    group = GroupCommit(database, record, key=lambda name: name[0])
    await asyncio.gather(group.submit("x1"), group.submit("y1"), group.submit("x2"))
    assert all(len({name[0] for name in batch}) == len(batch) for batch in seen)
    assert sorted(name for batch in seen for name in batch) == ["x1", "x2", "y1"]


async def test_a_batch_failing_for_a_reason_of_its_own_is_retried_alone(
    database: Database,
) -> None:
    calls: list[int] = []

    def fails_in_company(conn: sa.Connection, names: Sequence[str]) -> list[str]:
        calls.append(len(names))
        if len(names) > 1:
            raise RuntimeError("too many at once")
        return list(names)

    group = GroupCommit(database, fails_in_company, key=lambda name: name)
    results = await asyncio.gather(*[group.submit(name) for name in "abc"])
    assert results == ["a", "b", "c"]
    assert calls == [3, 1, 1, 1]


async def test_batches_in_flight_at_once_never_share_a_key_and_keep_its_order(
    database: Database,
) -> None:
    written: list[str] = []

    def record(conn: sa.Connection, names: Sequence[str]) -> list[str]:
        conn.execute(sa.text("SELECT 1"))
        written.extend(names)
        return list(names)

    group = GroupCommit(database, record, key=lambda name: name[0], concurrency=3)
    names = [f"{key}{round}" for round in range(4) for key in "abcdefgh"]
    assert await asyncio.gather(*[group.submit(name) for name in names]) == names
    for key in "abcdefgh":
        assert [name for name in written if name[0] == key] == [f"{key}{r}" for r in range(4)]
    assert group.batches >= 4
