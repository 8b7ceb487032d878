"""Stability: a steady delivery rate held for minutes, with memory that stays flat.

Issue 8 asks for a 10-minute run at a steady 5,000 deliveries/s with flat
RSS. The setup is the end-to-end benchmark's: nginx over HTTP/2 + TLS
stands in for APNs and logs every push it answers (`bench.nginx`), the
store is seeded by `bench.e2e_store`, and Clarion runs as real processes
(`bench.fleet`): `clarion serve --no-workers` for the API and
`CLARION_BENCH_SOAK_WORKERS` (default 2) `clarion worker` processes, on
SQLite or PostgreSQL (`CLARION_BENCH_SOAK_BACKEND`, default sqlite).

The load is paced, not a burst: every 200 ms this process POSTs one
notification through the HTTP API to the next fifth of the devices
(`{"devices": [...]}`), so `CLARION_BENCH_SOAK_RATE` (default 5,000)
deliveries/s are offered and each device gets one push a second. Every
10 s it records the pushes nginx answered, the backlog (deliveries the API
accepted less pushes answered) and the RSS and CPU of every Clarion process
(and the private memory of the PostgreSQL backends). The first window is
warm-up; the rate held and the RSS slope are taken after it. When pacing
ends the pipeline gets `CLARION_BENCH_SOAK_DRAIN_SECONDS` (default 15) to
drain. The offered rate is never lowered to what the pipeline manages: when
it cannot keep up, the achieved rate and a growing backlog say so.
`CLARION_BENCH_SOAK_SECONDS` is the paced time (default 60 for `make bench`;
`make soak` runs 600, the issue's 10 minutes).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx

from bench.e2e_store import backend_pids, fresh_store, postgres_reachable, seed
from bench.fleet import Fleet, running_fleet
from bench.nginx import AccessLog, Nginx, ensure_tools, running_nginx
from bench.procstat import resident_mb, sample
from bench.report import Row, table
from bench.soak_figures import SoakRun, Window, rows
from bench.soak_pacer import Pacer

RATE = float(os.environ.get("CLARION_BENCH_SOAK_RATE", "5000"))
SECONDS = float(os.environ.get("CLARION_BENCH_SOAK_SECONDS", "60"))
BACKEND = os.environ.get("CLARION_BENCH_SOAK_BACKEND", "sqlite")
WORKERS = int(os.environ.get("CLARION_BENCH_SOAK_WORKERS", "2"))
DRAIN_SECONDS = float(os.environ.get("CLARION_BENCH_SOAK_DRAIN_SECONDS", "15"))
WINDOW = 10.0
WARMUP = 10.0
TICK = 0.2
GROUPS = 5
"""Devices are seeded in this many groups of one notification's audience, sent to in turn."""


async def _measure(nginx: Nginx, directory: Path) -> SoakRun:
    assert nginx.access_log is not None
    log = AccessLog(nginx.access_log)
    audience = max(1, round(RATE * TICK))
    async with fresh_store(BACKEND, directory) as url:
        seeding = time.perf_counter()
        app = await seed(url, nginx, audience * GROUPS)
        took = time.perf_counter() - seeding
        print(f"  {BACKEND}: seeded {audience * GROUPS:,} devices in {took:.1f}s", flush=True)
        with running_fleet(url, nginx, directory, WORKERS) as fleet:
            async with httpx.AsyncClient(base_url=fleet.base, timeout=30) as api:
                pacer = Pacer(api, app, audience=audience, groups=GROUPS, tick=TICK)
                return await _paced(fleet, url, log, pacer)


async def _paced(fleet: Fleet, url: str, log: AccessLog, pacer: Pacer) -> SoakRun:
    log.mark()
    started = time.monotonic()
    windows = [await _window(0.0, fleet, url, log, pacer)]
    _print_window(windows[-1], None)
    pacing = asyncio.create_task(pacer.run(SECONDS))
    boundaries = [*range(int(WINDOW), int(SECONDS), int(WINDOW)), SECONDS]
    for boundary in dict.fromkeys(float(b) for b in boundaries):
        await asyncio.sleep(max(0.0, started + boundary - time.monotonic()))
        windows.append(await _window(time.monotonic() - started, fleet, url, log, pacer))
        _print_window(windows[-1], windows[-2])
    await pacing
    drain_started = time.monotonic()
    for _ in range(int(DRAIN_SECONDS / 0.25)):
        if log.poll() >= pacer.accepted:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(0.25)  # nginx flushes its log every 100 ms
    drained = await _window(time.monotonic() - started, fleet, url, log, pacer)
    print(f"  drained for {time.monotonic() - drain_started:.1f}s:")
    _print_window(drained, windows[-1])
    return SoakRun(
        rate=RATE,
        seconds=SECONDS,
        warmup=WARMUP,
        windows=windows,
        drained=drained,
        drain_seconds=time.monotonic() - drain_started,
        ticks=pacer.ticks,
        skipped=pacer.skipped,
        errors=dict(pacer.errors),
    )


async def _window(at: float, fleet: Fleet, url: str, log: AccessLog, pacer: Pacer) -> Window:
    pids = {name: process.pid for name, process in fleet.processes.items()}
    backends = await backend_pids(url)
    return Window(
        at=at,
        accepted=pacer.accepted,
        answered=log.poll(),
        rss_mb={name: resident_mb(pid) for name, pid in pids.items()},
        cpu_seconds=sum(sample(pid).cpu_seconds for pid in pids.values()),
        db_cpu_seconds=sum(sample(pid).cpu_seconds for pid in backends),
        db_private_mb=sum(resident_mb(pid, "RssAnon") for pid in backends),
    )


def _print_window(window: Window, previous: Window | None) -> None:
    rate = cpu = ""
    if previous is not None and window.at > previous.at:
        span = window.at - previous.at
        rate = f"{(window.answered - previous.answered) / span:,.0f}/s"
        spent = window.cpu_seconds - previous.cpu_seconds
        db_spent = window.db_cpu_seconds - previous.db_cpu_seconds
        cpu = f"{spent / span * 100:.0f}%" + (
            f" + db {db_spent / span * 100:.0f}%" if db_spent > 0 else ""
        )
    memory = " ".join(f"{name} {mb:.0f}" for name, mb in window.rss_mb.items())
    db = f" db {window.db_private_mb:.0f}" if window.db_private_mb else ""
    print(
        f"  t={window.at:5.0f}s offered {window.accepted:>9,} answered {window.answered:>9,}"
        f" ({rate:>8}) backlog {window.backlog:>8,} | RSS MB {memory}{db} | CPU {cpu}",
        flush=True,
    )


async def _run() -> SoakRun | None:
    if BACKEND == "postgres" and not await postgres_reachable():
        print("PostgreSQL on 127.0.0.1:5432 is not reachable: skipped")
        return None
    prefix = f"clarion-bench-soak-{BACKEND}-"
    with running_nginx(access_log=True) as nginx, tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return await _measure(nginx, Path(tmp))


def main() -> list[Row]:
    if not ensure_tools():
        return []
    print(
        f"  offering {RATE:,.0f} deliveries/s for {SECONDS:.0f}s ({BACKEND}, "
        f"{WORKERS} workers; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    run = asyncio.run(_run())
    if run is None:
        return []
    result = rows(run, BACKEND)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
