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
import re
import resource
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pycurl

from bench.nginx import BAD_MARKER, Nginx, ensure_tools, running_nginx
from clarion.providers.base import HttpRequest, Transport
from clarion.providers.curl_transport import CurlTransport
from clarion.providers.httpx_transport import HttpxTransport

H2LOAD_REQUESTS = 200_000
CURL_REQUESTS = 100_000
HTTPX_REQUESTS = 10_000
PROVIDER_REQUESTS = 50_000
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


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: requests, wall seconds, CPU seconds of this process, statuses."""

    requests: int
    seconds: float
    cpu_seconds: float
    statuses: Counter[str]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1e6


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    cpu, started = _cpu(), time.perf_counter()
    await batch(count)
    return Run(count, time.perf_counter() - started, _cpu() - cpu, statuses)


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
    cpu, started = _cpu(), time.perf_counter()
    for handle in handles:
        multi.add_handle(handle)
        started_count += 1
    while done < count:
        multi.select(1.0)
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
    run = Run(count, time.perf_counter() - started, _cpu() - cpu, statuses)
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


async def provider_run(server: Nginx, count: int) -> Run | None:
    """ApnsProvider.send() through CurlTransport; None when the provider is not there."""
    if importlib.util.find_spec("clarion.providers.apns") is None:
        return None
    from bench.apns_provider import provider_sender

    transport = CurlTransport(ca_file=server.ca_file)
    send = provider_sender(transport, server.url)
    try:
        return await drive(count, CONCURRENCY, send)
    finally:
        await transport.aclose()


def _row(figure: str, value: str, reference: str = "", ratio: str = "") -> tuple[str, ...]:
    return (figure, value, reference, ratio)


def _table(rows: list[tuple[str, ...]]) -> str:
    header = ("figure", "value", "reference", "ratio")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _rate_row(figure: str, run: Run, reference: Run | None, name: str = "") -> tuple[str, ...]:
    value = f"{run.rate:,.0f} req/s"
    if reference is None:
        return _row(figure, value)
    return _row(
        figure, value, f"{reference.rate:,.0f} ({name})", f"{run.rate / reference.rate:.2f}"
    )


def _cpu_row(figure: str, run: Run, reference: Run, name: str) -> tuple[str, ...]:
    return _row(
        figure,
        f"{run.cpu_us_per_request:.1f} us CPU/req",
        f"{reference.cpu_us_per_request:.1f} ({name})",
        f"{run.cpu_us_per_request / reference.cpu_us_per_request:.2f}",
    )


def main() -> None:
    if not ensure_tools():
        return
    with running_nginx() as server:
        h2load = h2load_run(server, H2LOAD_REQUESTS)
        bare = bare_pycurl_run(server, CURL_REQUESTS)
        ca = server.ca_file
        curl_ok = asyncio.run(
            transport_run(CurlTransport(ca_file=ca), server.url, CURL_REQUESTS, 0)
        )
        curl_err = asyncio.run(
            transport_run(CurlTransport(ca_file=ca), server.url, CURL_REQUESTS, 0.1)
        )
        httpx = asyncio.run(
            transport_run(HttpxTransport(ca_file=ca), server.url, HTTPX_REQUESTS, 0, 100)
        )
        provider = asyncio.run(provider_run(server, PROVIDER_REQUESTS))
    rows = [
        _rate_row("h2load, 2 conns x 100 streams", h2load, None),
        _rate_row("bare pycurl multi loop", bare, h2load, "h2load"),
        _rate_row("CurlTransport, 0% errors", curl_ok, bare, "bare pycurl"),
        _rate_row("CurlTransport, 10% 410 errors", curl_err, curl_ok, "0% errors"),
        _cpu_row("CurlTransport CPU per request", curl_ok, bare, "bare pycurl"),
        _rate_row("HttpxTransport, 0% errors", httpx, curl_ok, "CurlTransport"),
        _cpu_row("HttpxTransport CPU per request", httpx, curl_ok, "CurlTransport"),
    ]
    if provider is not None:
        rows.append(_rate_row("ApnsProvider.send() via curl", provider, curl_ok, "CurlTransport"))
        rows.append(_cpu_row("ApnsProvider.send() CPU", provider, curl_ok, "CurlTransport"))
    print(_table(rows))
    for name, run in [("curl 0%", curl_ok), ("curl 10%", curl_err), ("httpx", httpx)]:
        print(f"{name}: statuses {dict(run.statuses)}")


if __name__ == "__main__":
    main()
