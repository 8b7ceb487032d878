"""The planning process of the fan-out benchmark: `python -m bench.fanout_plan URL APP NTF`.

It plans the notification as the worker does (`plan_chunk` until done, each
chunk at the clock's current reading) and prints one JSON line: wall and CPU
seconds, peak RSS (this process image only, so the figure is the planning's
own and not the seeding's), devices planned, deliveries queued and
chunks. `CLARION_BENCH_PROFILE=path` writes a cProfile of the planning there,
`CLARION_BENCH_FANOUT_CHUNK` overrides the planner's chunk size,
`CLARION_BENCH_SQL_STATS=1` prints the SQL wall time per statement to stderr.
No `main()`: `python -m bench` runs only the benchmarks themselves.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import procstat
from bench.sqlstats import SqlStats
from clarion.delivery.planner import plan_chunk
from clarion.store.db import Database


async def plan(url: str, app_id: str, notification_id: str) -> dict[str, Any]:
    database = Database(url)
    stats = SqlStats(database) if os.environ.get("CLARION_BENCH_SQL_STATS") == "1" else None
    planned = queued = chunks = 0
    size = os.environ.get("CLARION_BENCH_FANOUT_CHUNK")
    chunk = {"chunk": int(size)} if size else {}
    try:
        started, cpu = time.perf_counter(), time.process_time()
        while True:
            result = await plan_chunk(database, app_id, notification_id, datetime.now(UTC), **chunk)
            planned, queued, chunks = planned + result.planned, queued + result.queued, chunks + 1
            if result.done:
                break
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        database_cpu = await _server_cpu(database)
    finally:
        await database.dispose()
    if stats is not None:
        print(stats.report(), file=sys.stderr)
    return {
        "seconds": seconds,
        "cpu": cpu,
        "database_cpu": database_cpu,
        "peak_rss": peak_rss(),
        "planned": planned,
        "queued": queued,
        "chunks": chunks,
    }


async def _server_cpu(database: Database) -> float:
    """CPU seconds of the PostgreSQL backends serving this database: the planner's own
    connections, since nothing else connects while it plans (0 on SQLite, whose work
    is done inside this process and counted in its CPU)."""
    if database.is_sqlite:
        return 0.0
    async with database.read() as conn:
        rows = await conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return sum(procstat.sample(int(pid)).cpu_seconds for (pid,) in rows)


def peak_rss() -> int:
    """Peak resident bytes of this process image: `VmHWM`, counted from `exec`.

    `ru_maxrss` would do, except that Linux carries it across `exec` from the
    process that forked us: the benchmark's parent, which held the seeding.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _run(argv: list[str]) -> None:
    url, app_id, notification_id = argv
    profile_path = os.environ.get("CLARION_BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler:
        profiler.enable()
    figures = asyncio.run(plan(url, app_id, notification_id))
    if profiler and profile_path:
        profiler.disable()
        profiler.dump_stats(profile_path)
    print(json.dumps(figures))


if __name__ == "__main__":
    _run(sys.argv[1:])
