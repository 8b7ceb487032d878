"""End to end: one notification to every device, from the API's POST to the last push.

nginx stands in for APNs (HTTP/2 + TLS on loopback, see `bench.nginx`) and
logs the time each push was answered. For each store (SQLite file,
PostgreSQL database made for the run) the benchmark seeds an app with an
APNs credential pointing at nginx and `CLARION_BENCH_DEVICES` granted
devices (default 200,000, issue 8's audience), then, per variant, POSTs one notification to
`{"audience": {"all": true}}` through the real API (in-process ASGI client)
and waits until nginx has answered every push and no delivery is queued:

- `2 workers` (the default): two `clarion worker` processes sharing the
  store, the API in this process (as `clarion serve --no-workers` + workers;
  they find the plan job at their next poll);
- `1 process` (`CLARION_BENCH_E2E_VARIANTS=inprocess,processes` adds it):
  the production `Worker` (`build_runtime`) in this process, woken by the
  API, as `clarion serve` runs it; this is where `CLARION_BENCH_SQL_STATS=1`
  can see the statements.

It prints deliveries/s (POST to the last push nginx answered) beside h2load's
rate against the same nginx in the same run, deliveries per CPU-second and
CPU microseconds per delivery (Clarion processes, this one's API and
polling included, plus the PostgreSQL server processes of the run's
database), peak RSS, and the provider latency quantiles of the in-process
worker (bucket bounds of its histogram). `CLARION_BENCH_BACKENDS=sqlite`
skips PostgreSQL; `main()` returns the rows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.e2e_store import (
    ADMIN_KEY,
    SECRET,
    SeededApp,
    backend_pids,
    fresh_store,
    postgres_reachable,
    seed,
)
from bench.fleet import stop_processes
from bench.nginx import AccessLog, Nginx, ensure_tools, running_nginx
from bench.procstat import ProcessSample, latency_quantiles, sample, sample_self
from bench.report import Row, table
from bench.sqlstats import SqlStats
from bench.transport import h2load_run
from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import SystemClock
from clarion.config import Settings
from clarion.delivery.runtime import build_runtime
from clarion.store.db import Database
from clarion.store.schema_pipeline import deliveries, notifications

DEVICES = int(os.environ.get("CLARION_BENCH_DEVICES", "200000"))
BACKENDS = os.environ.get("CLARION_BENCH_BACKENDS", "sqlite,postgres").split(",")
VARIANTS = os.environ.get("CLARION_BENCH_E2E_VARIANTS", "processes").split(",")
WORKER_PROCESSES = 2
TARGET_RATE = 20_000.0
"""Issue 8: deliveries/s end to end on this 2-core machine, both cores in use."""
PYSPY = os.environ.get("CLARION_BENCH_PYSPY")
"""A py-spy binary: record each measured run's processes (raw stacks) next to the run."""
PYSPY_IDLE = os.environ.get("CLARION_BENCH_PYSPY_IDLE") == "1"
"""Record idle stacks too (py-spy --idle): where the workers wait, not only where they run."""
PROFILE_DIR = Path(os.environ.get("CLARION_BENCH_PROFILE_DIR", tempfile.gettempdir()))
SQL_STATS = os.environ.get("CLARION_BENCH_SQL_STATS") == "1"
"""Print the in-process run's SQL wall time per statement (see `bench.sqlstats`)."""
STALL_SECONDS = 60.0
"""Give up on a run when nginx saw no new push for this long."""
NOTIFICATION = {
    "audience": {"all": True},
    "content": {"title": "Flash sale", "body": "Everything 20% off until midnight", "badge": 1},
}


@dataclass(frozen=True, slots=True)
class E2eRun:
    """One measured variant: pushes nginx answered, when, and what it cost."""

    label: str
    pushes: int
    seconds: float
    """POST to the last push nginx answered."""
    final_seconds: float
    """POST to no delivery left queued."""
    planned_seconds: float
    """POST to the planner's last chunk (every delivery and send job written)."""
    cpu_seconds: float
    """Clarion processes (the API's included)."""
    db_cpu_seconds: float
    """PostgreSQL server processes of the run's database (0 on SQLite: in-process)."""
    peak_rss_mb: float
    """The largest worker process (this one when it ran the worker)."""
    latency: tuple[float, ...] | None

    @property
    def rate(self) -> float:
        return self.pushes / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        spent = self.cpu_seconds + self.db_cpu_seconds
        return self.pushes / spent if spent else 0.0

    @property
    def cpu_us_per_delivery(self) -> float:
        return (self.cpu_seconds + self.db_cpu_seconds) / self.pushes * 1e6 if self.pushes else 0.0


def settings_for(url: str, nginx: Nginx, directory: Path) -> Settings:
    return Settings(
        database_url=url,
        admin_key=ADMIN_KEY,
        secret_key=SECRET,
        data_dir=directory,
        ca_file=nginx.ca_file,
        allow_private_endpoints=True,
    )


async def no_dns(host: str, port: int) -> list[str]:
    """The benchmark resolves nothing: no DNS query leaves the machine."""
    return []


async def in_process_run(
    label: str, url: str, nginx: Nginx, app: SeededApp, log: AccessLog, directory: Path
) -> E2eRun:
    database = Database(url)
    settings = settings_for(url, nginx, directory)
    clock = SystemClock()
    runtime = build_runtime(database, settings, clock)
    worker = runtime.worker
    services = Services(
        settings, database, clock, on_enqueue=worker.wake, metrics=worker.metrics, resolver=no_dns
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    stats = SqlStats(database) if SQL_STATS else None
    try:
        async with _api(services) as api:
            await asyncio.sleep(0.5)  # the worker is idle, waiting to be woken
            run = await _measure(label, url, api, app, log, database, pids=[])
            quantiles = latency_quantiles(worker.metrics.registry, (0.5, 0.99))
        if stats is not None:
            stats.detach()
            print(stats.report())
    finally:
        stop.set()
        await task
        await runtime.aclose()
        await database.dispose()
    return _with_latency(run, quantiles)


async def processes_run(
    label: str, url: str, nginx: Nginx, app: SeededApp, log: AccessLog, directory: Path
) -> E2eRun:
    workers = [
        _start_worker(url, nginx, directory / f"worker{i}.log") for i in range(WORKER_PROCESSES)
    ]
    database = Database(url)
    clock = SystemClock()
    services = Services(settings_for(url, nginx, directory), database, clock, resolver=no_dns)
    try:
        await asyncio.sleep(3.0)  # imports and the first idle poll
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"clarion worker exited: see {directory}")
        async with _api(services) as api:
            return await _measure(label, url, api, app, log, database, pids=workers)
    finally:
        stop_processes(workers)
        await database.dispose()


async def _measure(
    label: str,
    url: str,
    api: httpx.AsyncClient,
    app: SeededApp,
    log: AccessLog,
    database: Database,
    pids: list[subprocess.Popen[bytes]],
) -> E2eRun:
    before = [sample(p.pid, reset_peak=True) for p in pids]
    db_before = [sample(pid) for pid in await backend_pids(url)]
    own_before = sample_self(reset_peak=True)
    profilers = _profile(label, [os.getpid(), *(p.pid for p in pids)])
    log.mark()
    started = time.time()
    answer = await api.post(
        f"/v1/apps/{app.id}/notifications",
        json=NOTIFICATION,
        headers={"authorization": f"Bearer {app.server_key}"},
    )
    if answer.status_code != 202:
        raise RuntimeError(f"POST /notifications answered {answer.status_code}: {answer.text}")
    notification_id = answer.json()["id"]
    planning = asyncio.create_task(_until_planned(database, notification_id))
    await _until_answered(log, DEVICES)
    await _until_final(database, notification_id)
    final = time.time() - started
    planned = (await planning) - started
    _stop_profiling(profilers)
    after = [sample(p.pid) for p in pids]
    db_after = [sample(pid) for pid in await backend_pids(url)]
    own = sample_self().minus(own_before)
    workers = [a.minus(b) for a, b in zip(after, before, strict=True)]
    return E2eRun(
        label=label,
        pushes=log.count,
        seconds=(log.last - started) if log.count else final,
        final_seconds=final,
        planned_seconds=planned,
        cpu_seconds=own.cpu_seconds + sum(w.cpu_seconds for w in workers),
        db_cpu_seconds=_cpu_since(db_before, db_after),
        peak_rss_mb=max(w.peak_rss_mb for w in workers) if workers else own.peak_rss_mb,
        latency=None,
    )


def _profile(label: str, pids: list[int]) -> list[subprocess.Popen[bytes]]:
    if not PYSPY:
        return []
    name = label.replace(", ", "-").replace(" ", "_")
    profilers = []
    for pid in pids:
        output = PROFILE_DIR / f"e2e-{name}-{pid}.txt"
        command = [PYSPY, "record", "--pid", str(pid), "-o", str(output), "-f", "raw", "-r", "200"]
        if PYSPY_IDLE:
            command.append("--idle")
        profilers.append(subprocess.Popen([*command, "--nonblocking"], stderr=subprocess.DEVNULL))
        print(f"  profiling {pid} into {output}")
    time.sleep(0.5)  # py-spy attaches
    return profilers


def _stop_profiling(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(timeout=60)


def _cpu_since(before: list[ProcessSample], after: list[ProcessSample]) -> float:
    """CPU of the processes alive at the end, less what they had used before the run."""
    spent = {s.pid: s.cpu_seconds for s in after}
    for earlier in before:
        if earlier.pid in spent:
            spent[earlier.pid] -= earlier.cpu_seconds
    return sum(spent.values())


async def _until_answered(log: AccessLog, count: int) -> None:
    seen, progressed = 0, time.monotonic()
    while log.poll() < count:
        if log.count != seen:
            seen, progressed = log.count, time.monotonic()
        elif time.monotonic() - progressed > STALL_SECONDS:
            print(f"  stalled: nginx answered {log.count:,} of {count:,} pushes")
            return
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.25)  # nginx flushes its log every 100 ms: take the last lines
    log.poll()


async def _until_planned(database: Database, notification_id: str) -> float:
    """When the notification left `planning` (wall clock), polled every 100 ms."""
    query = sa.select(notifications.c.status).where(notifications.c.id == notification_id)
    deadline = time.monotonic() + STALL_SECONDS * 5
    while time.monotonic() < deadline:
        async with database.read() as conn:
            if (await conn.execute(query)).scalar_one() not in ("scheduled", "planning"):
                return time.time()
        await asyncio.sleep(0.1)
    return time.time()


async def _until_final(database: Database, notification_id: str) -> None:
    query = sa.select(sa.func.count()).where(
        deliveries.c.notification_id == notification_id, deliveries.c.status == "queued"
    )
    deadline = time.monotonic() + STALL_SECONDS
    while time.monotonic() < deadline:
        async with database.read() as conn:
            if not (await conn.execute(query)).scalar_one():
                return
        await asyncio.sleep(0.05)
    print("  stalled: deliveries still queued")


def _api(services: Services) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(services))
    return httpx.AsyncClient(transport=transport, base_url="http://clarion.bench")


def _start_worker(url: str, nginx: Nginx, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(
        CLARION_DATABASE_URL=url,
        CLARION_SECRET_KEY=SECRET.hex(),
        CLARION_ADMIN_KEY=ADMIN_KEY,
        CLARION_ALLOW_PRIVATE_ENDPOINTS="1",
        CLARION_CA_FILE=str(nginx.ca_file),
        CLARION_DATA_DIR=str(log.parent),
    )
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "clarion.cli", "worker"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )


def _with_latency(run: E2eRun, quantiles: tuple[float, ...] | None) -> E2eRun:
    return E2eRun(
        run.label,
        run.pushes,
        run.seconds,
        run.final_seconds,
        run.planned_seconds,
        run.cpu_seconds,
        run.db_cpu_seconds,
        run.peak_rss_mb,
        quantiles,
    )


RUNNERS = {"inprocess": ("1 process", in_process_run), "processes": ("2 workers", processes_run)}


async def run_all(nginx: Nginx, h2load_rate: float) -> list[E2eRun]:
    assert nginx.access_log is not None
    log = AccessLog(nginx.access_log)
    runs: list[E2eRun] = []
    for backend in BACKENDS:
        if backend == "postgres" and not await postgres_reachable():
            print("PostgreSQL on 127.0.0.1:5432 is not reachable: skipped")
            continue
        with tempfile.TemporaryDirectory(prefix=f"clarion-bench-{backend}-") as tmp:
            directory = Path(tmp)
            async with fresh_store(backend, directory) as url:
                seeding = time.perf_counter()
                app = await seed(url, nginx, DEVICES)
                took = time.perf_counter() - seeding
                print(f"  {backend}: seeded {DEVICES:,} devices in {took:.1f}s")
                for variant in VARIANTS:
                    name, runner = RUNNERS[variant]
                    run = await runner(f"{backend}, {name}", url, nginx, app, log, directory)
                    print(
                        f"  {run.label}: {run.rate:,.0f} deliveries/s ({h2load_rate:,.0f} h2load)"
                    )
                    runs.append(run)
    return runs


def rows(run: E2eRun, h2load_rate: float) -> list[Row]:
    label = run.label
    db = f" + {run.db_cpu_seconds:.1f} db" if run.db_cpu_seconds else ""
    result: list[Row] = [
        (
            f"{label}: deliveries/s, POST to last push",
            f"{run.rate:,.0f}/s",
            f"{h2load_rate:,.0f} (h2load)",
            f"{run.rate / h2load_rate:.2f}",
        ),
        (
            f"{label}: vs target",
            f"{run.rate:,.0f}/s",
            f"{TARGET_RATE:,.0f} (issue 8)",
            f"{run.rate / TARGET_RATE:.2f}",
        ),
        (
            f"{label}: deliveries per CPU-second",
            f"{run.per_cpu_second:,.0f}",
            f"{run.cpu_seconds:.1f} clarion{db} CPU-s",
            f"{run.cpu_us_per_delivery:.0f} us/delivery",
        ),
        (f"{label}: POST to all final", f"{run.final_seconds:.1f} s", f"{run.pushes:,} pushes", ""),
        (
            f"{label}: POST to all planned",
            f"{run.planned_seconds:.1f} s",
            f"{DEVICES / run.planned_seconds:,.0f} devices/s planned"
            if run.planned_seconds
            else "",
            "",
        ),
        (f"{label}: peak RSS", f"{run.peak_rss_mb:,.0f} MB", "largest worker process", ""),
    ]
    if run.latency is not None:
        p50, p99 = run.latency[0], run.latency[-1]
        result.append(
            (
                f"{label}: provider latency p50/p99",
                f"<={p50 * 1000:.0f} / <={p99 * 1000:.0f} ms",
                "histogram bucket bounds",
                "",
            )
        )
    return result


def main() -> list[Row]:
    if not ensure_tools():
        return []
    started = time.perf_counter()
    with running_nginx(access_log=True) as nginx:
        h2load = h2load_run(nginx, 200_000)
        runs = asyncio.run(run_all(nginx, h2load.rate))
    result = [row for run in runs for row in rows(run, h2load.rate)]
    print(table(result))
    print(
        f"{DEVICES:,} devices; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"took {time.perf_counter() - started:.0f}s"
    )
    return result


if __name__ == "__main__":
    main()
