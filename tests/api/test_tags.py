"""Bulk tags: set, merge and remove on devices chosen by ids or a filter."""

from __future__ import annotations

import httpx

from tests.api.conftest import AppKeys, register
from tests.api.factories import registration


async def _tags(api: httpx.AsyncClient, app: AppKeys, device_id: str) -> dict[str, str]:
    answer = await api.get(f"/v1/apps/{app.id}/devices/{device_id}", headers=app.server())
    result: dict[str, str] = answer.json()["tags"]
    return result


async def test_merge_and_remove_by_filter_touch_only_matching_devices(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    pro = await register(api, shop, registration("apns", tags={"plan": "pro", "x": "1"}))
    free = await register(api, shop, registration("fcm", tags={"plan": "free"}))
    answer = await api.post(
        f"/v1/apps/{shop.id}/devices/tags",
        json={"filter": "tag.plan = 'pro'", "merge": {"vip": "yes"}, "remove": ["x"]},
        headers=shop.server(),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"matched": 1, "updated": 1, "over_limit": 0}
    assert await _tags(api, shop, pro["id"]) == {"plan": "pro", "vip": "yes"}
    assert await _tags(api, shop, free["id"]) == {"plan": "free"}


async def test_set_by_ids_replaces_the_tags_and_is_idempotent(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    devices = [await register(api, shop, registration("apns", tags={"a": "1"})) for _ in range(3)]
    body = {"devices": [d["id"] for d in devices[:2]], "set": {"plan": "team"}}
    first = await api.post(f"/v1/apps/{shop.id}/devices/tags", json=body, headers=shop.server())
    assert first.json() == {"matched": 2, "updated": 2, "over_limit": 0}
    again = await api.post(f"/v1/apps/{shop.id}/devices/tags", json=body, headers=shop.server())
    assert again.json() == {"matched": 2, "updated": 0, "over_limit": 0}
    assert await _tags(api, shop, devices[0]["id"]) == {"plan": "team"}
    assert await _tags(api, shop, devices[2]["id"]) == {"a": "1"}


async def test_bad_requests_name_the_field(api: httpx.AsyncClient, shop: AppKeys) -> None:
    url = f"/v1/apps/{shop.id}/devices/tags"
    cases = [
        ({"merge": {"a": "b"}}, "devices"),
        ({"filter": "tag.a = 'b'", "devices": ["d"], "merge": {"a": "b"}}, "devices"),
        ({"filter": "tag.a = "}, "filter"),
        ({"filter": "tag.a exists"}, "set"),
        ({"filter": "tag.a exists", "set": {"a": "b"}, "remove": ["a"]}, "set"),
        ({"filter": "tag.a exists", "merge": {"bad name": "b"}}, "merge.bad name"),
    ]
    for body, field in cases:
        answer = await api.post(url, json=body, headers=shop.server())
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["errors"][0]["field"] == field, body


async def test_a_client_key_cannot_bulk_tag(api: httpx.AsyncClient, shop: AppKeys) -> None:
    answer = await api.post(
        f"/v1/apps/{shop.id}/devices/tags",
        json={"filter": "platform exists", "set": {}},
        headers=shop.client(),
    )
    assert answer.status_code in (401, 403)
