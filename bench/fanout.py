"""Fan-out: planning a million-device audience into deliveries and send jobs.

Issue 8's target: a 1,000,000-device audience (filter + consent + quiet
hours + caps, see `bench.fanout_seed`) planned in under 10 s on PostgreSQL
and 20 s on SQLite, the planning process staying under 300 MB.

Each backend gets a fresh store, bulk-seeded; the notification (category
`news`, now) is accepted as the API does, and a separate process
(`bench.fanout_plan`) plans it as the worker does, so its peak RSS is the
planning's own. The benchmark then checks what was written: one delivery per
audience device, and the send jobs carry exactly the queued and scheduled
ones. `CLARION_BENCH_FANOUT_DEVICES` sets the audience size (default
1,000,000; the app has a fifth more devices, which the filter leaves out),
`CLARION_BENCH_BACKENDS` the backends (`sqlite,postgres`),
`CLARION_BENCH_PROFILE_DIR` where a cProfile of each planning goes when
`CLARION_BENCH_FANOUT_PROFILE=1`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import fanout_seed
from bench.e2e_store import fresh_store, postgres_reachable
from bench.report import Row, table
from clarion.model.audience import Audience, AudienceKind
from clarion.model.notification import parse_notification
from clarion.store.audience import audience_count
from clarion.store.db import Database
from clarion.store.notifications import create_notification
from clarion.store.schema_pipeline import deliveries, jobs

AUDIENCE = int(os.environ.get("CLARION_BENCH_FANOUT_DEVICES", "1000000"))
BACKENDS = os.environ.get("CLARION_BENCH_BACKENDS", "sqlite,postgres").split(",")
PROFILE = os.environ.get("CLARION_BENCH_FANOUT_PROFILE") == "1"
PROFILE_DIR = Path(os.environ.get("CLARION_BENCH_PROFILE_DIR", tempfile.gettempdir()))
TARGET_SECONDS = {"sqlite": 20.0, "postgres": 10.0}
"""Issue 8: seconds to plan 1,000,000 devices (scaled linearly for other sizes)."""
TARGET_RSS = 300 * 2**20
NOTIFICATION = {
    "audience": {"filter": fanout_seed.FILTER},
    "content": {"title": "Morning briefing", "body": "Five things to know today"},
    "category": fanout_seed.CATEGORY,
}


async def _prepare(url: str) -> tuple[str, str, int, float]:
    """Seed the store and accept the notification: (app, notification, audience, seed s)."""
    database = Database(url, pool_size=1)
    try:
        started = time.perf_counter()
        now = datetime.now(UTC)
        app_id = await fanout_seed.create_app(database, now)
        await fanout_seed.load(database, app_id, fanout_seed.devices_for_audience(AUDIENCE), now)
        seeded = time.perf_counter() - started
        now = datetime.now(UTC)
        spec = parse_notification(NOTIFICATION, now)
        async with database.write() as conn:
            notification_id = await create_notification(conn, app_id, spec, now)
            audience = Audience(AudienceKind.FILTER, (fanout_seed.FILTER,))
            size = int((await conn.execute(audience_count(app_id, audience, now=now))).scalar())
    finally:
        await database.dispose()
    return app_id, notification_id, size, seeded


def _plan(url: str, app_id: str, notification_id: str, backend: str) -> dict[str, Any]:
    env = dict(os.environ)
    if PROFILE:
        env["CLARION_BENCH_PROFILE"] = str(PROFILE_DIR / f"fanout-{backend}.prof")
    done = subprocess.run(
        [sys.executable, "-m", "bench.fanout_plan", url, app_id, notification_id],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


async def _written(url: str, notification_id: str) -> tuple[dict[str, int], int]:
    """Deliveries by status, and the devices the send jobs carry."""
    database = Database(url, pool_size=1)
    try:
        async with database.read() as conn:
            statuses = await conn.execute(
                sa.select(deliveries.c.status, sa.func.count())
                .where(deliveries.c.notification_id == notification_id)
                .group_by(deliveries.c.status)
            )
            by_status = {str(status): int(count) for status, count in statuses}
            payloads = await conn.execute(sa.select(jobs.c.payload).where(jobs.c.kind == "send"))
            carried = sum(len(payload["devices"]) for (payload,) in payloads)
    finally:
        await database.dispose()
    return by_status, carried


async def _backend(backend: str) -> list[Row]:
    with tempfile.TemporaryDirectory() as directory:
        async with fresh_store(backend, Path(directory)) as url:
            app_id, notification_id, size, seeded = await _prepare(url)
            devices = fanout_seed.devices_for_audience(AUDIENCE)
            print(f"{backend}: seeded {devices:,} devices in {seeded:.1f} s; audience {size:,}")
            figures = await asyncio.to_thread(_plan, url, app_id, notification_id, backend)
            by_status, carried = await _written(url, notification_id)
    written = sum(by_status.values())
    sendable = by_status.get("queued", 0) + by_status.get("scheduled", 0)
    print(f"{backend}: deliveries {by_status}; send jobs carry {carried:,}")
    if size != AUDIENCE or written != size or carried != sendable or figures["planned"] != size:
        raise AssertionError(
            f"{backend}: audience {size}, planned {figures['planned']}, "
            f"deliveries {written}, sendable {sendable}, in send jobs {carried}"
        )
    return _rows(backend, size, figures)


def _rows(backend: str, size: int, figures: dict[str, Any]) -> list[Row]:
    seconds, cpu, peak = figures["seconds"], figures["cpu"], figures["peak_rss"]
    server = figures["database_cpu"]
    target = TARGET_SECONDS[backend] * size / 1_000_000
    name = f"fan-out {size:,} devices, {backend}"
    ratio = _ratio(seconds, target)
    per, per_target = f"{seconds / size * 1e6:.1f} us", f"{target / size * 1e6:.1f} us"
    rss = _ratio(peak, TARGET_RSS)
    return [
        (f"{name}: planning", f"{seconds:.1f} s", f"< {target:.1f} s (target)", ratio),
        (f"{name}: rate", f"{size / seconds:,.0f} recipients/s", "", ""),
        (f"{name}: wall per recipient", per, per_target, ratio),
        (f"{name}: planner CPU per recipient", f"{cpu / size * 1e6:.1f} us", "", ""),
        (f"{name}: planner peak RSS", f"{peak / 2**20:.0f} MB", "< 300 MB", rss),
        (f"{name}: chunks", f"{figures['chunks']}", "", ""),
    ] + ([] if backend == "sqlite" else [
        (f"{name}: PostgreSQL CPU per recipient", f"{server / size * 1e6:.1f} us", "", ""),
    ])  # fmt: skip


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}"


async def _main() -> list[Row]:
    rows: list[Row] = []
    for backend in BACKENDS:
        if backend != "sqlite" and not await postgres_reachable():
            print("PostgreSQL on 127.0.0.1:5432 is not reachable: skipped")
            continue
        rows += await _backend(backend)
    return rows


def main() -> list[Row]:
    rows = asyncio.run(_main())
    print(table(rows))
    return rows
