"""Time to first push: from the API's 202 to the provider receiving the push.

A real `clarion serve` (SQLite, embedded worker) sends to one user's device
through the APNs emulator running in this process. The reference is the bare
round trip of one HTTP/2 request from this process to the same emulator
(the floor any push service pays).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.clarion_process import ADMIN_KEY, clarion_serve
from bench.report import Row, table
from clarion.emulators.apns import ApnsEmulator
from clarion.providers.base import HttpRequest
from clarion.providers.curl_transport import CurlTransport

SENDS = int(os.environ.get("CLARION_BENCH_FIRST_PUSH_SENDS", "200"))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _floor(apns: ApnsEmulator) -> list[float]:
    """One plain request at a time to the emulator: the transport's own round trip."""
    transport = CurlTransport(ca_file=apns.ca_file)
    times = []
    try:
        for _ in range(SENDS):
            apns.state.clear()
            started = time.time()
            await transport.request(HttpRequest("GET", apns.url + "/_emulator/requests"))
            times.append(time.time() - started)
    finally:
        await transport.aclose()
    return times


async def _measure(directory: Path) -> tuple[list[float], list[float]]:
    async with ApnsEmulator() as apns:
        assert apns.ca_file is not None
        settings = {
            "CLARION_CA_FILE": str(apns.ca_file),
            "CLARION_ALLOW_PRIVATE_ENDPOINTS": "1",
        }
        with clarion_serve(directory, **settings) as clarion:
            admin = {"authorization": f"Bearer {ADMIN_KEY}"}
            async with httpx.AsyncClient(base_url=clarion.base, timeout=10) as api:
                app = (await api.post("/v1/apps", json={"name": "Bench"}, headers=admin)).json()
                server = {"authorization": f"Bearer {app['server_key']}"}
                body = {
                    "auth": "token",
                    "key_id": "KEY0000001",
                    "team_id": "TEAM000001",
                    "private_key": apns.new_signing_key(),
                    "bundle_id": "com.example.app",
                    "environment": "production",
                    "endpoint": apns.url,
                }
                put = await api.put(
                    f"/v1/apps/{app['id']}/providers/apns", json=body, headers=server
                )
                put.raise_for_status()
                await api.post(
                    f"/v1/apps/{app['id']}/devices",
                    json={
                        "platform": "apns",
                        "token": secrets.token_hex(32),
                        "user_id": "u-1",
                        "consent": {"status": "granted", "source": "os_prompt"},
                    },
                    headers={"authorization": f"Bearer {app['client_key']}"},
                )
                note = {"audience": {"users": ["u-1"]}, "content": {"title": "Your code: 1234"}}
                latencies = []
                for index in range(SENDS + 10):
                    answer = await api.post(
                        f"/v1/apps/{app['id']}/notifications", json=note, headers=server
                    )
                    answered = time.time()
                    answer.raise_for_status()
                    received = await asyncio.wait_for(apns.state.wait_for(index + 1), 10)
                    if index >= 10:  # the first pushes open the connection and sign the JWT
                        latencies.append(max(0.0, received[index].received_at - answered))
        apns.state.clear()
        floor = await _floor(apns)
    return latencies, floor


def main() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="clarion-bench-") as directory:
        latencies, floor = asyncio.run(_measure(Path(directory)))
    rows: list[Row] = [
        (
            f"time to first push p{int(q * 100)} (SQLite, {SENDS} sends)",
            f"{_percentile(latencies, q) * 1000:.1f} ms",
            f"{_percentile(floor, q) * 1000:.2f} ms (one HTTP/2 round trip)",
            f"{_percentile(latencies, q) / max(_percentile(floor, q), 1e-9):.1f}",
        )
        for q in (0.5, 0.99)
    ]
    rows.append(("time to first push mean", f"{statistics.mean(latencies) * 1000:.1f} ms", "", ""))
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
