"""How long counting a typical filter audience takes, on SQLite and PostgreSQL.

`python -m bench filter_count` seeds one app's devices (plus a tenth as many
in another app) and times `audience_count` for
`platform = 'apns' and tag.plan = 'pro' and last_seen > now - 30d` through
the same compiled path the API and planner use; it prints the best of
three runs, beside counting all the app's devices with no filter (the
floor of any audience count). SQLite gets 100,000 devices, PostgreSQL
100,000 and 1,000,000 (seeded with `generate_series`, which is much faster
than inserting rows one by one).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.e2e_store import fresh_store, postgres_reachable
from bench.report import Row, table
from clarion.model.audience import Audience, AudienceKind
from clarion.store.audience import audience_count
from clarion.store.db import Database
from clarion.store.schema import apps, devices

TYPICAL = "platform = 'apns' and tag.plan = 'pro' and last_seen > now - 30d"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
PLATFORMS = ["apns", "fcm", "webpush", "wns"]
PLANS = ["free", "pro", "team", "free", "free"]
CHUNK = 5_000


async def _apps(database: Database) -> None:
    async with database.write() as conn:
        for app_id in ("app_bench", "app_other"):
            await conn.execute(
                apps.insert().values(
                    id=app_id, name=app_id, caps=[], categories=[],
                    subject_salt=b"s" * 32, created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip


def _row(index: int) -> dict[str, object]:
    seen = NOW - timedelta(days=index % 90)
    return {
        "id": f"dev_{index:010d}",
        "app_id": "app_other" if index % 11 == 0 else "app_bench",
        "platform": PLATFORMS[index % 4],
        "token": f"t{index}",
        "token_hash": f"h{index}",
        "app_version": f"2.{index % 12}.0",
        "tags": {"plan": PLANS[(index // 7) % 5], "first_name": f"n{index}"},
        "consent": "granted",
        "active": True,
        "created_at": seen,
        "updated_at": seen,
        "last_seen": seen,
    }


async def _seed_rows(database: Database, count: int) -> None:
    for start in range(0, count, CHUNK):
        async with database.write() as conn:
            await conn.execute(
                devices.insert(), [_row(i) for i in range(start, min(start + CHUNK, count))]
            )


SERIES = """
INSERT INTO devices (id, app_id, platform, token, token_hash, app_version, tags, consent,
                     active, created_at, updated_at, last_seen)
SELECT 'dev_' || lpad(g::text, 10, '0'),
       CASE WHEN g % 11 = 0 THEN 'app_other' ELSE 'app_bench' END,
       (ARRAY['apns','fcm','webpush','wns'])[1 + g % 4], 't' || g, 'h' || g,
       '2.' || (g % 12) || '.0',
       jsonb_build_object('plan', (ARRAY['free','pro','team','free','free'])[1 + (g / 7) % 5],
                          'first_name', 'n' || g),
       'granted', true, s.at, s.at, s.at
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g,
     LATERAL (SELECT CAST(:now AS timestamptz) - make_interval(days => g % 90) AS at) AS s
"""


async def _seed_series(database: Database, first: int, last: int) -> None:
    async with database.write() as conn:
        await conn.execute(sa.text(SERIES), {"now": NOW, "first": first, "last": last})
        await conn.execute(sa.text("ANALYZE devices"))


async def _time_count(database: Database, query: sa.Select[Any]) -> tuple[int, float]:
    best, count = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        async with database.read() as conn:
            count = int((await conn.execute(query)).scalar_one())
        best = min(best, time.perf_counter() - started)
    return count, best


FILTERED = audience_count("app_bench", Audience(AudienceKind.FILTER, (TYPICAL,)), now=NOW)
PLAIN = sa.select(sa.func.count()).select_from(devices).where(devices.c.app_id == "app_bench")
"""The reference: counting the app's devices with no filter, the floor of any audience count."""


async def _run(backend: str, sizes: list[int]) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as directory:
        async with fresh_store(backend, Path(directory)) as url:
            database = Database(url)
            try:
                await _apps(database)
                seeded = 0
                for size in sizes:
                    if backend == "postgres":
                        await _seed_series(database, seeded, size - 1)
                    else:
                        await _seed_rows(database, size)
                    seeded = size
                    count, best = await _time_count(database, FILTERED)
                    _, plain = await _time_count(database, PLAIN)
                    print(
                        f"{backend:8} {size:>9,} devices: count={count:,} "
                        f"in {best * 1000:.0f} ms (best of 3; all devices {plain * 1000:.0f} ms)"
                    )
                    rows.append(
                        (
                            f"filter count, {size:,} devices ({backend})",
                            f"{best * 1000:.0f} ms",
                            f"{plain * 1000:.0f} ms (count all the app's devices)",
                            f"{best / max(plain, 1e-9):.1f}",
                        )
                    )
            finally:
                await database.dispose()
    return rows


async def _main() -> list[Row]:
    print(f"filter: {TYPICAL}")
    rows = await _run("sqlite", [100_000])
    if await postgres_reachable():
        rows += await _run("postgres", [100_000, 1_000_000])
    else:
        print("postgres: not reachable on 127.0.0.1:5432, skipped")
    return rows


def main() -> list[Row]:
    rows = asyncio.run(_main())
    print(table(rows))
    return rows
