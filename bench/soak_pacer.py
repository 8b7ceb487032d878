"""A steady offered load: one notification per tick through the HTTP API, on a fixed clock.

Each tick is due at `start + n * tick`, whatever the previous POSTs took,
and each POST is its own task: a slow answer delays no later tick, so the
offered rate stays the one asked for. When the API falls so far behind that
`max_in_flight` POSTs are waiting, a tick is counted as skipped rather than
queued without bound; the soak report prints skipped ticks, so an API that
cannot take the rate shows instead of quietly lowering it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from bench.e2e_store import SeededApp

CONTENT = {"title": "Order update", "body": "Your parcel is on its way", "badge": 1}


class Pacer:
    """POSTs `{"devices": [...]}` notifications to groups of `audience` seeded devices in turn."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        app: SeededApp,
        *,
        audience: int,
        groups: int,
        tick: float,
        max_in_flight: int = 50,
    ) -> None:
        self.audience = audience
        self.tick = tick
        self.accepted = 0
        """Deliveries in notifications the API accepted (202) so far."""
        self.ticks = 0
        self.skipped = 0
        self.errors: Counter[str] = Counter()
        self._api = api
        self._path = f"/v1/apps/{app.id}/notifications"
        self._headers = {"authorization": f"Bearer {app.server_key}"}
        self._bodies = [self._body(group) for group in range(groups)]
        self._max_in_flight = max_in_flight
        self._in_flight: set[asyncio.Task[None]] = set()

    def _body(self, group: int) -> dict[str, Any]:
        first = group * self.audience
        ids = [f"dev_{index:026d}" for index in range(first, first + self.audience)]
        return {"audience": {"devices": ids}, "content": CONTENT}

    async def run(self, seconds: float) -> None:
        """Tick for `seconds`, then wait for the POSTs still in flight."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        count = max(1, round(seconds / self.tick))
        for tick in range(count):
            await asyncio.sleep(max(0.0, start + tick * self.tick - loop.time()))
            self.ticks += 1
            if len(self._in_flight) >= self._max_in_flight:
                self.skipped += 1
                continue
            task = asyncio.create_task(self._post(self._bodies[tick % len(self._bodies)]))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        await asyncio.sleep(max(0.0, start + count * self.tick - loop.time()))
        if self._in_flight:
            await asyncio.gather(*self._in_flight)

    async def _post(self, body: dict[str, Any]) -> None:
        try:
            answer = await self._api.post(self._path, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            return
        if answer.status_code == 202:
            self.accepted += self.audience
        else:
            self.errors[str(answer.status_code)] += 1
