"""Device registration throughput, latency and CPU, load from `wrk` in its own process.

A real `clarion serve` takes `POST /v1/apps/{app}/devices` with a fresh APNs
token and a consent answer on every request (a Lua script makes them), on
SQLite and then on PostgreSQL. The reference is the same server's
`/healthz` under the same wrk settings in the same run, which measures the
HTTP stack alone. CPU per request is the server process's (plus, on
PostgreSQL, its backends'), read from /proc: on a shared machine the rate
moves with the neighbours, the CPU much less. Target: 3,000 registrations/s
with p99 under 25 ms.

    CLARION_BENCH_API_SECONDS      length of each wrk run (10)
    CLARION_BENCH_API_CONNECTIONS  wrk connections (32)
    CLARION_BENCH_API_BACKENDS     "sqlite,postgresql" (the default) or one of them
    CLARION_BENCH_API_PROCESSES    API processes (`clarion serve --api-processes`, 1)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.clarion_process import ADMIN_KEY, RunningClarion, clarion_serve
from bench.e2e_store import (
    POSTGRES_ADMIN_URL,
    admin,
    backend_pids,
    migrate_url,
    postgres_reachable,
)
from bench.procstat import sample
from bench.report import Row, table

DURATION = os.environ.get("CLARION_BENCH_API_SECONDS", "10")
CONNECTIONS = os.environ.get("CLARION_BENCH_API_CONNECTIONS", "32")
BACKENDS = os.environ.get("CLARION_BENCH_API_BACKENDS", "sqlite,postgresql").split(",")
PROCESSES = os.environ.get("CLARION_BENCH_API_PROCESSES", "1")
TARGET_RATE = 3000
TARGET_P99_MS = 25.0

LUA = """
-- Each wrk thread has its own Lua state: seeded alike, they sent the same tokens
-- (half the "new" devices were re-registrations of the other thread's).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end
function init(args)
  math.randomseed(os.time() * 100 + number)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local hex = "0123456789abcdef"
request = function()
  local token = {}
  for i = 1, 64 do
    local n = math.random(1, 16)
    token[i] = hex:sub(n, n)
  end
  local body = '{"platform":"apns","token":"' .. table.concat(token) ..
    '","user_id":"u-' .. math.random(1, 100000) ..
    '","timezone":"Europe/Paris","consent":{"status":"granted","source":"os_prompt"}}'
  return wrk.format(nil, "%(path)s", nil, body)
end
"""


@dataclass(frozen=True, slots=True)
class WrkRun:
    """One wrk run against one URL, with the CPU the server side spent on it."""

    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_seconds: float
    server_cpu_seconds: float

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / max(self.requests, 1) * 1e6

    @property
    def server_cpu_us(self) -> float:
        """The server process's share of `cpu_us` (the rest is PostgreSQL's backends)."""
        return self.server_cpu_seconds / max(self.requests, 1) * 1e6


def _wrk(url: str, server: CpuMeter, script: Path | None = None) -> WrkRun:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    before, server_before = server.read()
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    after, server_after = server.read()

    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        assert match is not None, output
        return float(match.group(1))

    def percentile(label: str) -> float:
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", output)
        assert match is not None, output
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkRun(
        rate=number(r"Requests/sec:\s+([\d.]+)"),
        p50_ms=percentile("50"),
        p99_ms=percentile("99"),
        requests=int(number(r"(\d+) requests in")),
        errors=int(errors.group(1)) if errors else 0,
        cpu_seconds=after - before,
        server_cpu_seconds=server_after - server_before,
    )


class CpuMeter:
    """CPU seconds so far of the server process and, on PostgreSQL, of its backends."""

    def __init__(self, clarion: RunningClarion, url: str) -> None:
        self.pid = clarion.process.pid
        self.url = url
        self.seen: dict[int, float] = {}
        self.servers: set[int] = set()

    def read(self) -> tuple[float, float]:
        """(server and backends, server alone) CPU seconds so far."""
        servers = [self.pid, *_children(self.pid)]
        for pid in [*servers, *asyncio.run(backend_pids(self.url))]:
            self.seen[pid] = sample(pid).cpu_seconds or self.seen.get(pid, 0.0)
            if pid in servers:
                self.servers.add(pid)
        return sum(self.seen.values()), sum(self.seen[pid] for pid in self.servers)


def _children(pid: int) -> list[int]:
    """The server's child processes (`--api-processes`: the other API processes)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _create_app(clarion: RunningClarion) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{clarion.base}/v1/apps",
        data=json.dumps({"name": "Bench"}).encode(),
        headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:  # noqa: S310 - loopback
        app: dict[str, str] = json.load(answer)
    return app


@contextmanager
def _store(backend: str, directory: Path) -> Iterator[str]:
    """The database URL for the server: SQLite's embedded default, or a fresh PostgreSQL one."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'var' / 'clarion.db'}"
        return
    name = f"clarion_bench_api_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        asyncio.run(migrate_url(url))
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def measure(backend: str) -> tuple[WrkRun, WrkRun]:
    """(/healthz, registration) against one `clarion serve` on `backend`."""
    with tempfile.TemporaryDirectory(prefix="clarion-bench-") as name:
        directory = Path(name)
        with _store(backend, directory) as url:
            settings = {"CLARION_API_PROCESSES": PROCESSES}
            if backend != "sqlite":
                settings["CLARION_DATABASE_URL"] = url
            with clarion_serve(directory, **settings) as clarion:
                app = _create_app(clarion)
                script = directory / "register.lua"
                path = f"/v1/apps/{app['id']}/devices"
                script.write_text(LUA % {"key": app["client_key"], "path": path})
                meter = CpuMeter(clarion, url)
                health = _wrk(f"{clarion.base}/healthz", meter)
                register = _wrk(f"{clarion.base}{path}", meter, script)
    if register.errors:
        print(f"  {backend}: wrk saw {register.errors} non-2xx answers to registrations")
    return health, register


def rows_for(backend: str, health: WrkRun, register: WrkRun) -> list[Row]:
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    cpu_note = "server + postgres" if backend != "sqlite" else "server"
    return [
        (
            f"device registration, {label} (target {TARGET_RATE:,}/s)",
            f"{register.rate:,.0f} req/s",
            f"{health.rate:,.0f} req/s (/healthz)",
            f"{register.rate / health.rate:.2f}",
        ),
        (
            f"registration p99, {label} (target {TARGET_P99_MS:.0f} ms)",
            f"{register.p99_ms:.1f} ms (p50 {register.p50_ms:.1f})",
            f"{health.p99_ms:.1f} ms (/healthz p99)",
            f"{register.p99_ms / max(health.p99_ms, 1e-6):.1f}",
        ),
        (
            f"CPU per registration, {label} ({cpu_note})",
            f"{register.cpu_us:.0f} us"
            + (f" ({register.server_cpu_us:.0f} server)" if backend != "sqlite" else ""),
            f"{health.cpu_us:.0f} us (/healthz)",
            f"{register.cpu_us / max(health.cpu_us, 1e-6):.1f}",
        ),
    ]


def main() -> list[Row]:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk")
        return []
    rows: list[Row] = []
    for backend in BACKENDS:
        if backend == "postgresql" and not asyncio.run(postgres_reachable()):
            print(f"PostgreSQL at {POSTGRES_ADMIN_URL} does not answer: its rows are skipped")
            continue
        health, register = measure(backend)
        rows += rows_for(backend, health, register)
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
