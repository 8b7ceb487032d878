"""Segments and audience counts over the API, on both backends."""

from __future__ import annotations

from typing import Any

import httpx

from clarion.clock import FakeClock
from tests.api.conftest import AppKeys, create_test_app, register
from tests.api.factories import registration


async def _fleet(api: httpx.AsyncClient, app: AppKeys) -> list[dict[str, Any]]:
    bodies = [
        registration("apns", app_version="2.10.0", tags={"plan": "pro"}, locale="fr-CA"),
        registration("apns", app_version="2.9.1", tags={"plan": "pro"}),
        registration("fcm", app_version="2.10.0", tags={"plan": "free"}),
        registration("apns", app_version="3.0", tags={"plan": "team"}, locale="de-DE"),
    ]
    return [await register(api, app, body) for body in bodies]


async def test_segment_lifecycle_with_a_live_count(
    api: httpx.AsyncClient, shop: AppKeys, clock: FakeClock
) -> None:
    await _fleet(api, shop)
    base = f"/v1/apps/{shop.id}/segments"
    created = await api.post(
        base,
        json={"name": "pro iOS", "filter": "platform='apns' AND tag.plan IN ('pro','team')"},
        headers=shop.server(),
    )
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["filter"] == "platform = 'apns' and tag.plan in ('pro', 'team')"
    one = await api.get(f"{base}/{segment['id']}", headers=shop.server())
    assert one.json()["count"] == 3

    patched = await api.patch(
        f"{base}/{segment['id']}",
        json={"filter": "platform = 'apns' and app_version >= '2.10'"},
        headers=shop.server(),
    )
    assert patched.status_code == 200, patched.text
    assert (await api.get(f"{base}/{segment['id']}", headers=shop.server())).json()["count"] == 2
    listed = await api.get(base, headers=shop.server())
    assert [s["id"] for s in listed.json()["items"]] == [segment["id"]]

    assert (await api.delete(f"{base}/{segment['id']}", headers=shop.server())).status_code == 204
    assert (await api.get(f"{base}/{segment['id']}", headers=shop.server())).status_code == 404


async def test_a_bad_filter_is_a_422_with_its_position(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    answer = await api.post(
        f"/v1/apps/{shop.id}/segments",
        json={"name": "broken", "filter": "platform = 'apns' and"},
        headers=shop.server(),
    )
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["field"] == "filter"
    assert "at position 21" in error["message"]
    assert "expected a field" in error["message"]


async def test_segment_names_are_unique_per_app(api: httpx.AsyncClient, shop: AppKeys) -> None:
    body = {"name": "all", "filter": "platform exists"}
    base = f"/v1/apps/{shop.id}/segments"
    assert (await api.post(base, json=body, headers=shop.server())).status_code == 201
    assert (await api.post(base, json=body, headers=shop.server())).status_code == 409


async def test_draft_audience_counts(
    api: httpx.AsyncClient, shop: AppKeys, clock: FakeClock
) -> None:
    devices = await _fleet(api, shop)
    clock.advance(40 * 86400)
    await register(api, shop, {"platform": "apns", "token": "ab" * 32, "tags": {"plan": "pro"}})
    url = f"/v1/apps/{shop.id}/audience/count"

    async def count(audience: dict[str, Any]) -> int:
        answer = await api.post(url, json={"audience": audience}, headers=shop.server())
        assert answer.status_code == 200, answer.text
        result: int = answer.json()["count"]
        return result

    typical = "platform = 'apns' and tag.plan = 'pro' and last_seen > now - 30d"
    assert await count({"filter": typical}) == 1
    assert await count({"filter": "app_version > '2.9.1'"}) == 3
    assert await count({"filter": "not locale = 'de-DE'"}) == 4
    assert await count({"all": True}) == 5
    assert await count({"devices": [devices[0]["id"], "dev_unknown"]}) == 1


async def test_count_errors_name_the_audience_field(api: httpx.AsyncClient, shop: AppKeys) -> None:
    url = f"/v1/apps/{shop.id}/audience/count"
    bad = await api.post(url, json={"audience": {"filter": "tag.plan =="}}, headers=shop.server())
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "audience.filter"
    assert "at position 10" in bad.json()["errors"][0]["message"]
    missing = await api.post(url, json={"audience": {"segment": "seg_x"}}, headers=shop.server())
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "audience.segment"


async def test_another_apps_segment_is_not_found(api: httpx.AsyncClient, shop: AppKeys) -> None:
    other = await create_test_app(api, "Other")
    created = await api.post(
        f"/v1/apps/{other.id}/segments",
        json={"name": "x", "filter": "platform exists"},
        headers=other.server(),
    )
    segment_id = created.json()["id"]
    assert (
        await api.get(f"/v1/apps/{shop.id}/segments/{segment_id}", headers=shop.server())
    ).status_code == 404
    answer = await api.post(
        f"/v1/apps/{shop.id}/audience/count",
        json={"audience": {"segment": segment_id}},
        headers=shop.server(),
    )
    assert answer.status_code == 422
    assert (await api.get(f"/v1/apps/{shop.id}/segments", headers=shop.client())).status_code in (
        401,
        403,
    )
