"""How many APNs-style pushes per second one process gets through each transport.

Everything runs against the same local nginx (see `bench.nginx`), in one run,
so the figures compare: h2load (nghttp2's C load generator) is the ceiling of
server + loopback; a bare pycurl loop with no asyncio is the ceiling of
libcurl driven from Python; then `CurlTransport` with 0% and 10% error
answers (410 Unregistered with a JSON body), `HttpxTransport`, and, when the
APNs provider exists, `ApnsProvider.send()` end to end (JWT, rendered
payload, classified outcome) through `CurlTransport`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pycurl

from bench.nginx import BAD_MARKER, Nginx, ensure_tools, running_nginx
from bench.report import Row, Run, best_of, cpu_row, cpu_seconds, rate_row, table
from clarion.providers.base import HttpRequest, Transport
from clarion.providers.curl_transport import CurlTransport
from clarion.providers.httpx_transport import HttpxTransport

H2LOAD_REQUESTS = 200_000
CURL_REQUESTS = 50_000
HTTPX_REQUESTS = 3_000
PROVIDER_REQUESTS = 30_000
ROUNDS = 3
TARGET_RATE = 15_000.0
"""Issue 4's goal: APNs sends per second from one process (JWT, payload, classified answer)."""
CONCURRENCY = 400
"""Requests kept in flight by the Python clients (h2load: 2 connections x 100 streams)."""

PAYLOAD = (
    b'{"aps":{"alert":{"title":"Your order shipped","body":"Arrives Thursday"},'
    b'"badge":1,"sound":"default"},"order_id":"1234"}'
)
HEADERS = (
    ("authorization", "bearer " + "x" * 180),
    ("apns-topic", "com.example.app"),
    ("apns-push-type", "alert"),
    ("apns-priority", "10"),
    ("apns-expiration", "0"),
    ("content-type", "application/json"),
)


def token(index: int, error_share: float) -> str:
    """A hex token; every 1/error_share-th one starts with the 410 marker."""
    bad = error_share > 0 and index % round(1 / error_share) == 0
    return f"{BAD_MARKER if bad else 'beef'}{index:060x}"


def requests_for(url: str, count: int, error_share: float) -> list[HttpRequest]:
    distinct = min(count, 1000)
    return [
        HttpRequest("POST", f"{url}/3/device/{token(i, error_share)}", HEADERS, PAYLOAD, 10.0)
        for i in range(distinct)
    ]


async def drive(
    count: int, concurrency: int, send: Callable[[int], Awaitable[str]], warmup: int = 2000
) -> Run:
    """Run `send(i)` for i < count with `concurrency` workers; warm up first."""
    statuses: Counter[str] = Counter()

    async def worker(indices: range) -> None:
        for index in indices:
            statuses[await send(index)] += 1

    async def batch(total: int) -> None:
        await asyncio.gather(*(worker(range(w, total, concurrency)) for w in range(concurrency)))

    await batch(warmup)
    statuses.clear()
    cpu, started = cpu_seconds(), time.perf_counter()
    await batch(count)
    return Run(count, time.perf_counter() - started, cpu_seconds() - cpu, statuses)


async def transport_run(
    transport: Transport, url: str, count: int, error_share: float, concurrency: int = CONCURRENCY
) -> Run:
    requests = requests_for(url, count, error_share)

    async def send(index: int) -> str:
        response = await transport.request(requests[index % len(requests)])
        return str(response.status)

    try:
        return await drive(count, concurrency, send)
    finally:
        await transport.aclose()


def bare_pycurl_run(server: Nginx, count: int, concurrency: int = CONCURRENCY) -> Run:
    """libcurl's multi interface in a plain perform/select loop: no asyncio, no futures."""
    request = requests_for(server.url, 1, 0.0)[0]
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, 1000)
    handles = []
    for _ in range(concurrency):
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, request.url)
        handle.setopt(pycurl.CAINFO, str(server.ca_file))
        handle.setopt(pycurl.PIPEWAIT, 1)
        handle.setopt(pycurl.POSTFIELDS, request.body)
        handle.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in request.headers])
        handle.setopt(pycurl.WRITEFUNCTION, len)
        handles.append(handle)
    statuses: Counter[str] = Counter()
    started_count = done = 0
    cpu, started = cpu_seconds(), time.perf_counter()
    for handle in handles:
        multi.add_handle(handle)
        started_count += 1
    while done < count:
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        _queued, succeeded, failed = multi.info_read()
        for handle in [*succeeded, *(entry[0] for entry in failed)]:
            statuses[str(handle.getinfo(pycurl.RESPONSE_CODE))] += 1
            multi.remove_handle(handle)
            done += 1
            if started_count < count:
                multi.add_handle(handle)
                started_count += 1
        if not succeeded and not failed:
            multi.select(1.0)
    run = Run(count, time.perf_counter() - started, cpu_seconds() - cpu, statuses)
    for handle in handles:
        handle.close()
    multi.close()
    return run


def h2load_run(server: Nginx, count: int) -> Run:
    with tempfile.NamedTemporaryFile(suffix=".json") as body:
        Path(body.name).write_bytes(PAYLOAD)
        headers = [arg for name, value in HEADERS for arg in ("-H", f"{name}: {value}")]
        url = f"{server.url}/3/device/{token(1, 0.0)}"
        command = ["h2load", "-n", str(count), "-c", "2", "-m", "100", "-d", body.name]
        output = subprocess.run(
            [*command, *headers, url], check=True, capture_output=True, text=True
        ).stdout
    seconds = float(re.search(r"finished in ([\d.]+)s", output).group(1))  # type: ignore[union-attr]
    succeeded = re.search(r"(\d+) succeeded", output)
    return Run(count, seconds, 0.0, Counter({"2xx": int(succeeded.group(1)) if succeeded else 0}))


def provider_available() -> bool:
    return importlib.util.find_spec("clarion.providers.apns") is not None


async def provider_run(server: Nginx, count: int, error_share: float = 0.1) -> Run:
    """ApnsProvider.send() end to end through CurlTransport (see `provider_available`)."""
    from bench.apns_provider import provider_sender

    transport = CurlTransport(ca_file=server.ca_file)
    send = provider_sender(transport, server.url, error_share)
    try:
        return await drive(count, CONCURRENCY, send)
    finally:
        await transport.aclose()


async def provider_batch_run(
    server: Nginx, count: int, error_share: float = 0.0, size: int = 500, in_flight: int = 4
) -> Run:
    """ApnsProvider.send_batch() as the sender calls it: batches of `size`, `in_flight` at once."""
    from bench.apns_provider import batch_sender

    transport = CurlTransport(ca_file=server.ca_file)
    send = batch_sender(transport, server.url, error_share, size)
    statuses: Counter[str] = Counter()

    async def worker(batches: range) -> None:
        for index in batches:
            statuses.update(await send(index))

    async def run(total: int) -> None:
        await asyncio.gather(*(worker(range(w, total, in_flight)) for w in range(in_flight)))

    try:
        await run(in_flight)  # warm up: connection, JWT
        statuses.clear()
        batches = count // size
        cpu, started = cpu_seconds(), time.perf_counter()
        await run(batches)
        return Run(batches * size, time.perf_counter() - started, cpu_seconds() - cpu, statuses)
    finally:
        await transport.aclose()


def main() -> list[Row]:
    if not ensure_tools():
        return []
    started = time.perf_counter()
    with running_nginx() as server:
        ca, url = server.ca_file, server.url

        def curl(errors: float) -> Run:
            return asyncio.run(transport_run(CurlTransport(ca_file=ca), url, CURL_REQUESTS, errors))

        h2load = h2load_run(server, H2LOAD_REQUESTS)
        bare = best_of(2, lambda: bare_pycurl_run(server, CURL_REQUESTS))
        curl_ok = best_of(ROUNDS, lambda: curl(0.0))
        curl_err = best_of(ROUNDS, lambda: curl(0.1))
        httpx = asyncio.run(
            transport_run(HttpxTransport(ca_file=ca), url, HTTPX_REQUESTS, 0.0, 100)
        )

        def provider(errors: float) -> Run:
            return asyncio.run(provider_run(server, PROVIDER_REQUESTS, errors))

        available = provider_available()
        provider_ok = best_of(ROUNDS, lambda: provider(0.0)) if available else None
        provider_err = best_of(ROUNDS, lambda: provider(0.1)) if available else None

        def batched(errors: float) -> Run:
            return asyncio.run(provider_batch_run(server, PROVIDER_REQUESTS, errors))

        batch_ok = best_of(ROUNDS, lambda: batched(0.0)) if available else None
        batch_err = best_of(ROUNDS, lambda: batched(0.1)) if available else None
    rows = [
        rate_row("h2load (C), 2 conns x 100 streams", h2load, None),
        rate_row("bare pycurl multi loop, no asyncio", bare, h2load, "h2load"),
        cpu_row("bare pycurl CPU per request", bare, bare, "itself"),
        rate_row("CurlTransport, 0% errors", curl_ok, TARGET_RATE, "target"),
        rate_row("CurlTransport vs bare pycurl", curl_ok, bare, "bare pycurl"),
        cpu_row("CurlTransport CPU per request", curl_ok, bare, "bare pycurl"),
        rate_row("CurlTransport, 10% 410 errors", curl_err, curl_ok, "0% errors"),
        cpu_row("CurlTransport CPU, 10% errors", curl_err, curl_ok, "0% errors"),
        rate_row("HttpxTransport, 0% errors", httpx, curl_ok, "CurlTransport"),
        cpu_row("HttpxTransport CPU per request", httpx, curl_ok, "CurlTransport"),
    ]
    if provider_ok is not None and provider_err is not None:
        rows += [
            rate_row("ApnsProvider.send(), 0% errors", provider_ok, TARGET_RATE, "target"),
            rate_row("ApnsProvider.send() vs h2load", provider_ok, h2load, "h2load"),
            cpu_row("ApnsProvider.send() CPU", provider_ok, curl_ok, "CurlTransport"),
            rate_row("ApnsProvider.send(), 10% 410s", provider_err, provider_ok, "0% errors"),
            cpu_row("ApnsProvider.send() CPU, 10% 410s", provider_err, provider_ok, "0% errors"),
        ]
    if batch_ok is not None and batch_err is not None and provider_ok is not None:
        rows += [
            rate_row("ApnsProvider.send_batch(), 0% errors", batch_ok, TARGET_RATE, "target"),
            rate_row("ApnsProvider.send_batch() vs h2load", batch_ok, h2load, "h2load"),
            cpu_row("ApnsProvider.send_batch() CPU", batch_ok, provider_ok, "send()"),
            cpu_row("send_batch() CPU vs bare pycurl", batch_ok, bare, "bare pycurl"),
            rate_row("ApnsProvider.send_batch(), 10% 410s", batch_err, batch_ok, "0% errors"),
        ]
    print(table(rows))
    print(
        f"best of {ROUNDS} runs of {CURL_REQUESTS:,} requests, {CONCURRENCY} in flight; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"took {time.perf_counter() - started:.0f}s"
    )
    for name, run in [
        ("curl 10%", curl_err),
        ("provider 10%", provider_err),
        ("batch 10%", batch_err),
    ]:
        if run is not None:
            print(f"{name}: {dict(run.statuses)}")
    return rows


if __name__ == "__main__":
    main()
