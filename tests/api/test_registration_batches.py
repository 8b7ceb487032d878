"""Registrations arriving together are written together, with the same answers."""

from __future__ import annotations

import asyncio

import httpx

from clarion.store.db import Database
from tests.api.conftest import AppKeys, create_test_app
from tests.api.factories import registration


async def test_concurrent_registrations_share_transactions_and_each_gets_its_device(
    api: httpx.AsyncClient, shop: AppKeys, database: Database
) -> None:
    bodies = [
        registration("apns", user_id=f"u-{i}", consent={"status": "granted"}) for i in range(40)
    ]
    url = f"/v1/apps/{shop.id}/devices"
    answers = await asyncio.gather(*[api.post(url, json=b, headers=shop.client()) for b in bodies])
    assert [a.status_code for a in answers] == [201] * 40
    assert [a.json()["user_id"] for a in answers] == [f"u-{i}" for i in range(40)]
    assert len({a.json()["id"] for a in answers}) == 40
    services = api._transport.app.state.services  # type: ignore[attr-defined]
    assert services.registrations.batches < 40
    for answer in answers[:3]:
        history = await api.get(f"{url}/{answer.json()['id']}/consent", headers=shop.server())
        assert [e["new_status"] for e in history.json()["items"]] == ["granted"]


async def test_same_token_twice_at_once_is_one_device_created_then_updated(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    body = registration("fcm", user_id="alice", consent={"status": "granted"})
    again = {**body, "user_id": "bob"}
    url = f"/v1/apps/{shop.id}/devices"
    first, second = await asyncio.gather(
        api.post(url, json=body, headers=shop.client()),
        api.post(url, json=again, headers=shop.client()),
    )
    # Either may arrive first: one creates the device, the other then moves it.
    created, updated = sorted([first, second], key=lambda answer: -answer.status_code)
    assert (created.status_code, updated.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert {created.json()["user_id"], updated.json()["user_id"]} == {"alice", "bob"}
    history = await api.get(f"{url}/{first.json()['id']}/consent", headers=shop.server())
    assert [e["source"] for e in history.json()["items"]] == ["api", "user_changed"]


async def test_batch_mixing_apps_new_and_returning_devices_answers_like_one_by_one(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    other = await create_test_app(api, "Other")
    url = f"/v1/apps/{shop.id}/devices"
    known = registration("apns", user_id="alice", tags={"plan": "pro"}, locale="fr-FR")
    stored = (await api.post(url, json=known, headers=shop.client())).json()
    token = {"platform": "apns", "token": known["token"]}
    returning = {**token, "user_id": "bob", "consent": {"status": "provisional"}}
    same_token_other_app = {**known, "user_id": "carol"}
    answers = await asyncio.gather(
        api.post(url, json=returning, headers=shop.client()),
        api.post(f"/v1/apps/{other.id}/devices", json=same_token_other_app, headers=other.client()),
        api.post(url, json=registration("hms"), headers=shop.client()),
    )
    assert [a.status_code for a in answers] == [200, 201, 201]
    moved = answers[0].json()
    assert (moved["id"], moved["user_id"], moved["tags"]) == (stored["id"], "bob", {})
    assert (moved["locale"], moved["consent"], moved["created_at"]) == (
        "fr-FR",
        "provisional",
        stored["created_at"],
    )
    assert answers[1].json()["id"] != stored["id"]
    fetched = await api.get(f"{url}/{stored['id']}", headers=shop.server())
    assert {k: v for k, v in fetched.json().items() if k != "topics"} == moved
    history = await api.get(f"{url}/{stored['id']}/consent", headers=shop.server())
    assert [(e["source"], e["new_status"]) for e in history.json()["items"]] == [
        ("user_changed", "denied"),
        ("api", "provisional"),
    ]
