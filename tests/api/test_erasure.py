import httpx

from clarion.store.db import Database
from tests.api.conftest import AppKeys
from tests.api.factories import registration
from tests.store.dump import dump_database


async def test_erasing_a_user_leaves_no_token_or_user_id_in_the_store(
    api: httpx.AsyncClient, shop: AppKeys, database: Database
) -> None:
    user = "erase-me-7f3a91"
    tokens = []
    for platform in ("apns", "webpush", "fcm"):
        body = registration(
            platform,
            user_id=user,
            tags={"first_name": "Zebulon"},
            consent={"status": "granted", "source": "os_prompt"},
        )
        response = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
        device = response.json()
        await api.put(
            f"/v1/apps/{shop.id}/devices/{device['id']}/topics/deals", headers=shop.client()
        )
        token = body["token"]
        tokens.append(token["endpoint"] if isinstance(token, dict) else token)
        if isinstance(token, dict):
            tokens += [token["keys"]["p256dh"], token["keys"]["auth"]]
    await api.put(
        f"/v1/apps/{shop.id}/users/{user}/preferences",
        json={"categories": {"marketing": False}, "timezone": "Europe/Oslo"},
        headers=shop.client(),
    )
    before = await dump_database(database)
    assert user in before
    assert all(token in before for token in tokens)

    erased = await api.delete(f"/v1/apps/{shop.id}/users/{user}", headers=shop.server())
    assert erased.status_code == 204

    after = await dump_database(database)
    assert user not in after
    assert "Zebulon" not in after
    for token in tokens:
        assert token not in after
    assert after.count("consent_events:") == 3  # the proof of opt-in survives, hashed
    gone = await api.get(f"/v1/apps/{shop.id}/users/{user}", headers=shop.server())
    assert gone.status_code == 404


async def test_consent_proof_survives_erasure_under_a_hashed_subject(
    api: httpx.AsyncClient, shop: AppKeys, database: Database
) -> None:
    body = registration("fcm", user_id="u-9", consent={"status": "granted"})
    device = (
        await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    ).json()
    await api.delete(f"/v1/apps/{shop.id}/users/u-9", headers=shop.server())
    log = await api.get(f"/v1/apps/{shop.id}/consent-log", headers=shop.server())
    events = [line for line in log.text.splitlines() if line]
    assert len(events) == 1
    assert device["id"] in events[0]
    assert '"subject_hash": "' in events[0]
    assert "u-9" not in events[0]


async def test_erasing_an_unknown_user_is_404(api: httpx.AsyncClient, shop: AppKeys) -> None:
    response = await api.delete(f"/v1/apps/{shop.id}/users/nobody", headers=shop.server())
    assert response.status_code == 404
