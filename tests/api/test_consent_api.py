import csv
import io
import json

import httpx
import pytest

from clarion.clock import FakeClock
from tests.api.conftest import AppKeys
from tests.api.factories import registration


async def _device(api: httpx.AsyncClient, shop: AppKeys) -> str:
    body = registration(
        "apns", user_id="u-1", consent={"status": "provisional", "source": "os_prompt"}
    )
    response = await api.post(
        f"/v1/apps/{shop.id}/devices",
        json=body,
        headers={**shop.client(), "user-agent": "ShopApp/1.0 iOS"},
    )
    return str(response.json()["id"])


async def test_consent_history_records_each_change_with_request_origin(
    api: httpx.AsyncClient, shop: AppKeys, clock: FakeClock
) -> None:
    device_id = await _device(api, shop)
    clock.advance(3600)
    changed = await api.put(
        f"/v1/apps/{shop.id}/devices/{device_id}/consent",
        json={
            "status": "granted",
            "source": "settings",
            "text_version": "2026-05",
            "client_time": "2026-01-01T00:59:00Z",
        },
        headers={**shop.client(), "user-agent": "ShopApp/1.1 iOS"},
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "granted"
    history = (
        await api.get(f"/v1/apps/{shop.id}/devices/{device_id}/consent", headers=shop.server())
    ).json()
    assert history["status"] == "granted"
    first, second = history["items"]
    assert (first["old_status"], first["new_status"], first["source"]) == (
        "denied",
        "provisional",
        "os_prompt",
    )
    assert (second["old_status"], second["new_status"]) == ("provisional", "granted")
    assert second["text_version"] == "2026-05"
    assert second["client_time"] == "2026-01-01T00:59:00Z"
    assert second["user_agent"] == "ShopApp/1.1 iOS"
    assert second["ip"] == "127.0.0.1"
    assert second["server_time"] == "2026-01-01T01:00:00Z"


async def test_client_key_may_change_consent_but_not_read_the_history(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    device_id = await _device(api, shop)
    url = f"/v1/apps/{shop.id}/devices/{device_id}/consent"
    assert (
        await api.put(url, json={"status": "revoked"}, headers=shop.client())
    ).status_code == 200
    assert (await api.get(url, headers=shop.client())).status_code == 403


async def test_bad_consent_status_is_422(api: httpx.AsyncClient, shop: AppKeys) -> None:
    device_id = await _device(api, shop)
    response = await api.put(
        f"/v1/apps/{shop.id}/devices/{device_id}/consent",
        json={"status": "sure"},
        headers=shop.client(),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "status"


async def test_consent_log_exports_json_lines_and_csv(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    device_id = await _device(api, shop)
    await api.put(
        f"/v1/apps/{shop.id}/devices/{device_id}/consent",
        json={"status": "revoked", "source": "settings"},
        headers=shop.client(),
    )
    jsonl = await api.get(f"/v1/apps/{shop.id}/consent-log", headers=shop.server())
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [e["new_status"] for e in events] == ["provisional", "revoked"]
    as_csv = await api.get(
        f"/v1/apps/{shop.id}/consent-log", params={"format": "csv"}, headers=shop.server()
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["new_status"] for r in rows] == ["provisional", "revoked"]
    assert rows[0]["device_id"] == device_id
    by_accept = await api.get(
        f"/v1/apps/{shop.id}/consent-log", headers={**shop.server(), "accept": "text/csv"}
    )
    assert by_accept.text == as_csv.text


async def test_consent_log_export_streams_more_than_one_chunk(
    api: httpx.AsyncClient, shop: AppKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clarion.store import consent as ledger

    monkeypatch.setattr(ledger, "EXPORT_CHUNK", 4)
    device_id = await _device(api, shop)
    statuses = ["granted", "revoked"] * 9
    for status in statuses:
        await api.put(
            f"/v1/apps/{shop.id}/devices/{device_id}/consent",
            json={"status": status},
            headers=shop.client(),
        )
    log = await api.get(f"/v1/apps/{shop.id}/consent-log", headers=shop.server())
    ids = [json.loads(line)["id"] for line in log.text.splitlines()]
    assert len(ids) == len(statuses) + 1
    assert ids == sorted(ids)


async def test_consent_log_time_window_needs_a_zone(api: httpx.AsyncClient, shop: AppKeys) -> None:
    response = await api.get(
        f"/v1/apps/{shop.id}/consent-log",
        params={"since": "2026-01-01T00:00:00"},
        headers=shop.server(),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "since"
