"""The soak's pacer: a fixed clock of POSTs, each to the next group of devices."""

from __future__ import annotations

import json

import httpx
from bench.e2e_store import SeededApp
from bench.soak_pacer import Pacer


async def test_pacer_posts_one_notification_per_tick_to_each_group_in_turn() -> None:
    seen: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer srv"
        seen.append(json.loads(request.content)["audience"]["devices"])
        return httpx.Response(202 if len(seen) != 3 else 429, json={})

    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://clarion") as api:
        pacer = Pacer(api, SeededApp("app_1", "srv"), audience=2, groups=2, tick=0.01)
        await pacer.run(0.05)
    assert pacer.ticks == 5
    assert seen[0] == ["dev_" + "0" * 26, "dev_" + "0" * 25 + "1"]
    assert seen[1] == ["dev_" + "0" * 25 + "2", "dev_" + "0" * 25 + "3"]
    assert seen[2] == seen[0]
    assert pacer.accepted == 4 * 2
    assert pacer.errors == {"429": 1}
