from typing import Any

import httpx
import pytest

from tests.api.conftest import AppKeys, create_test_app
from tests.api.factories import registration, webpush_subscription

PLATFORMS = ["apns", "fcm", "hms", "adm", "wns", "webpush", "blackberry"]


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_every_platform_registers_and_reads_back(
    api: httpx.AsyncClient, shop: AppKeys, platform: str
) -> None:
    body = registration(platform, user_id="u-1", locale="fr-CA", timezone="Europe/Paris")
    created = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    assert created.status_code == 201, created.text
    device = created.json()
    fetched = await api.get(f"/v1/apps/{shop.id}/devices/{device['id']}", headers=shop.server())
    assert fetched.status_code == 200
    assert fetched.json()["platform"] == platform
    assert fetched.json()["locale"] == "fr-CA"
    assert fetched.json()["consent"] == "denied"


async def test_registering_the_same_token_twice_updates_one_device(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    body = registration("apns", user_id="u-1", consent={"status": "granted"})
    first = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    second = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    listed = await api.get(f"/v1/apps/{shop.id}/devices", headers=shop.server())
    assert len(listed.json()["items"]) == 1
    history = await api.get(
        f"/v1/apps/{shop.id}/devices/{first.json()['id']}/consent", headers=shop.server()
    )
    assert len(history.json()["items"]) == 1


async def test_apns_token_case_does_not_create_a_second_device(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    body = registration("apns")
    first = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    body["token"] = body["token"].upper()
    second = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


async def test_token_moves_to_a_new_user_without_the_old_users_tags_and_topics(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    body = registration("fcm", user_id="alice", tags={"plan": "pro"})
    device = (
        await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    ).json()
    await api.put(f"/v1/apps/{shop.id}/devices/{device['id']}/topics/news", headers=shop.client())
    moved = await api.post(
        f"/v1/apps/{shop.id}/devices",
        json={"platform": "fcm", "token": body["token"], "user_id": "bob"},
        headers=shop.client(),
    )
    assert moved.status_code == 200
    assert moved.json()["id"] == device["id"]
    assert moved.json()["user_id"] == "bob"
    assert moved.json()["tags"] == {}
    fetched = await api.get(f"/v1/apps/{shop.id}/devices/{device['id']}", headers=shop.server())
    assert fetched.json()["topics"] == []
    alice = await api.get(f"/v1/apps/{shop.id}/users/alice", headers=shop.server())
    assert alice.status_code == 404
    bob = await api.get(f"/v1/apps/{shop.id}/users/bob", headers=shop.server())
    assert [d["id"] for d in bob.json()["devices"]] == [device["id"]]


async def test_reregistering_reactivates_a_deactivated_device(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    body = registration("fcm")
    device = (
        await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    ).json()
    patched = await api.patch(
        f"/v1/apps/{shop.id}/devices/{device['id']}", json={"active": False}, headers=shop.server()
    )
    assert patched.json()["active"] is False
    again = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    assert again.json()["active"] is True


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("odd-length apns token", {"platform": "apns", "token": "abc"}, "token"),
    ("non-hex apns token", {"platform": "apns", "token": "zz" * 32}, "token"),
    ("empty fcm token", {"platform": "fcm", "token": ""}, "token"),
    ("fcm token with spaces", {"platform": "fcm", "token": "a b"}, "token"),
    ("oversized hms token", {"platform": "hms", "token": "x" * 5000}, "token"),
    ("empty adm token", {"platform": "adm", "token": " "}, "token"),
    ("unknown platform", {"platform": "pager", "token": "x"}, "platform"),
    ("webpush token as string", {"platform": "webpush", "token": "https://x"}, "token"),
    (
        "webpush http endpoint",
        {"platform": "webpush", "token": webpush_subscription("http://push.example.net/x")},
        "token.endpoint",
    ),
    (
        "webpush short p256dh",
        {
            "platform": "webpush",
            "token": {"endpoint": "https://p.example/x", "keys": {"p256dh": "AAAA", "auth": "x"}},
        },
        "token.keys.p256dh",
    ),
    (
        "webpush p256dh not on the curve",
        {
            "platform": "webpush",
            "token": {
                "endpoint": "https://p.example/x",
                "keys": {"p256dh": "BA" + "A" * 85, "auth": "YWFhYWFhYWFhYWFhYWFhYQ"},
            },
        },
        "token.keys.p256dh",
    ),
    (
        "webpush 15-byte auth",
        {
            "platform": "webpush",
            "token": {
                **webpush_subscription(),
                "keys": {**webpush_subscription()["keys"], "auth": "YWFhYWFhYWFhYWFhYWFh"},
            },
        },
        "token.keys.auth",
    ),
    ("wns on another host", {"platform": "wns", "token": "https://evil.example/x"}, "token"),
    ("wns over http", {"platform": "wns", "token": "http://a.notify.windows.com/x"}, "token"),
    ("blackberry bad pin", {"platform": "blackberry", "token": "12345"}, "token"),
    ("unknown time zone", {**registration("fcm"), "timezone": "Mars/Olympus"}, "timezone"),
    ("bad locale", {**registration("fcm"), "locale": "not a locale"}, "locale"),
    ("too many tags", {**registration("fcm"), "tags": {f"t{i}": "v" for i in range(65)}}, "tags"),
    ("non-string tag", {**registration("fcm"), "tags": {"plan": 3}}, "tags.plan"),
    ("bad tag name", {**registration("fcm"), "tags": {"no spaces": "v"}}, "tags.no spaces"),
    ("empty user id", {**registration("fcm"), "user_id": ""}, "user_id"),
    ("bad consent", {**registration("fcm"), "consent": {"status": "maybe"}}, "consent.status"),
    ("unknown field", {**registration("fcm"), "colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("case", "body", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_registration_is_422_naming_the_field(
    api: httpx.AsyncClient, shop: AppKeys, case: str, body: dict[str, Any], field: str
) -> None:
    response = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    listed = await api.get(f"/v1/apps/{shop.id}/devices", headers=shop.server())
    assert listed.json()["items"] == []


async def test_every_bad_field_is_listed_at_once(api: httpx.AsyncClient, shop: AppKeys) -> None:
    body = {"platform": "apns", "token": "xyz", "timezone": "Nowhere/Town", "locale": "??"}
    response = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    assert {e["field"] for e in response.json()["errors"]} == {"token", "timezone", "locale"}


async def test_device_list_pages_with_a_cursor_and_filters(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    for index in range(5):
        user = "even" if index % 2 == 0 else "odd"
        await api.post(
            f"/v1/apps/{shop.id}/devices",
            json=registration("fcm", user_id=user),
            headers=shop.client(),
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await api.get(f"/v1/apps/{shop.id}/devices", params=params, headers=shop.server())
        ).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen)
    evens = await api.get(
        f"/v1/apps/{shop.id}/devices", params={"user_id": "even"}, headers=shop.server()
    )
    assert len(evens.json()["items"]) == 3


async def test_bad_cursor_and_limit_are_422(api: httpx.AsyncClient, shop: AppKeys) -> None:
    bad_cursor = await api.get(
        f"/v1/apps/{shop.id}/devices", params={"cursor": "!!!"}, headers=shop.server()
    )
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"
    bad_limit = await api.get(
        f"/v1/apps/{shop.id}/devices", params={"limit": 0}, headers=shop.server()
    )
    assert bad_limit.json()["errors"][0]["field"] == "limit"


async def test_client_key_registers_but_cannot_list_or_read_devices(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    created = await api.post(
        f"/v1/apps/{shop.id}/devices", json=registration("fcm"), headers=shop.client()
    )
    assert created.status_code == 201
    device_id = created.json()["id"]
    listed = await api.get(f"/v1/apps/{shop.id}/devices", headers=shop.client())
    assert listed.status_code == 403
    read = await api.get(f"/v1/apps/{shop.id}/devices/{device_id}", headers=shop.client())
    assert read.status_code == 403
    app_settings = await api.get(f"/v1/apps/{shop.id}", headers=shop.client())
    assert app_settings.status_code == 403


async def test_client_key_cannot_read_another_app(api: httpx.AsyncClient, shop: AppKeys) -> None:
    other = await create_test_app(api, "Other")
    response = await api.post(
        f"/v1/apps/{other.id}/devices", json=registration("fcm"), headers=shop.client()
    )
    assert response.status_code == 404


async def test_patch_and_delete_device(api: httpx.AsyncClient, shop: AppKeys) -> None:
    device = (
        await api.post(
            f"/v1/apps/{shop.id}/devices", json=registration("fcm"), headers=shop.client()
        )
    ).json()
    url = f"/v1/apps/{shop.id}/devices/{device['id']}"
    patched = await api.patch(
        url, json={"locale": "de-DE", "tags": {"a": "b"}}, headers=shop.server()
    )
    assert (patched.json()["locale"], patched.json()["tags"]) == ("de-DE", {"a": "b"})
    bad = await api.patch(url, json={"timezone": "Atlantis"}, headers=shop.server())
    assert bad.status_code == 422
    assert (await api.delete(url, headers=shop.server())).status_code == 204
    assert (await api.get(url, headers=shop.server())).status_code == 404
    assert (await api.delete(url, headers=shop.server())).status_code == 404
