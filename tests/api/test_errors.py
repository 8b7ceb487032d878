import httpx

from tests.api.conftest import ADMIN, AppKeys
from tests.api.factories import registration


async def test_body_over_the_limit_is_413_and_nothing_is_stored(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    body = registration("fcm", tags={"pad": "x" * 200})
    body["app_version"] = "1" * 70_000
    response = await api.post(f"/v1/apps/{shop.id}/devices", json=body, headers=shop.client())
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    listed = await api.get(f"/v1/apps/{shop.id}/devices", headers=shop.server())
    assert listed.json()["items"] == []


async def test_chunked_body_over_the_limit_is_413(api: httpx.AsyncClient, shop: AppKeys) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"platform": "fcm", "token": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = await api.post(
        f"/v1/apps/{shop.id}/devices",
        content=chunks(),
        headers={**shop.client(), "content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_malformed_json_is_a_422_problem(api: httpx.AsyncClient, shop: AppKeys) -> None:
    response = await api.post(
        f"/v1/apps/{shop.id}/devices",
        content=b'{"platform": ',
        headers={**shop.client(), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text


async def test_unknown_route_is_a_404_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/nothing-here", headers=ADMIN)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_wrong_method_is_a_405_problem(api: httpx.AsyncClient) -> None:
    response = await api.put("/healthz")
    assert response.status_code == 405
    assert response.json()["title"] == "Method Not Allowed"


async def test_health_readiness_and_openapi(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).json() == {"status": "ready"}
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/apps/{app_id}/devices" in spec["paths"]


async def test_app_settings_patch_validates_each_field(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    url = f"/v1/apps/{shop.id}"
    good = await api.patch(
        url,
        json={
            "default_timezone": "America/New_York",
            "quiet_hours": {"start": "22:00", "end": "08:00"},
            "caps": [{"max": 3, "per": "day", "category": "marketing"}, {"max": 10, "per": "week"}],
            "categories": [
                {"name": "orders", "time_sensitive": True},
                {"name": "marketing", "default_opt_in": False},
            ],
        },
        headers=shop.server(),
    )
    assert good.status_code == 200, good.text
    assert good.json()["quiet_hours"] == {"start": "22:00", "end": "08:00"}
    assert good.json()["categories"][0]["time_sensitive"] is True
    bad = await api.patch(
        url,
        json={
            "quiet_hours": {"start": "25:00", "end": "08:00"},
            "caps": [{"max": -1, "per": "day"}],
            "categories": [{"name": "Bad Name"}],
        },
        headers=shop.server(),
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"quiet_hours.start", "caps.0.max", "categories.0.name"}
    unchanged = await api.get(url, headers=shop.server())
    assert unchanged.json()["default_timezone"] == "America/New_York"


async def test_preferences_are_validated_and_stored(api: httpx.AsyncClient, shop: AppKeys) -> None:
    url = f"/v1/apps/{shop.id}/users/u-1/preferences"
    good = await api.put(
        url,
        json={
            "categories": {"marketing": False},
            "quiet_hours": {"start": "23:00", "end": "07:00"},
            "timezone": "Asia/Tokyo",
            "caps": [{"max": 2, "per": "day"}],
        },
        headers=shop.client(),
    )
    assert good.status_code == 200
    bad = await api.put(
        url,
        json={"categories": {"marketing": "no"}, "timezone": "Tokyo", "caps": "lots"},
        headers=shop.client(),
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {
        "categories.marketing",
        "timezone",
        "caps",
    }
    await api.post(
        f"/v1/apps/{shop.id}/devices",
        json=registration("fcm", user_id="u-1"),
        headers=shop.client(),
    )
    user = await api.get(f"/v1/apps/{shop.id}/users/u-1", headers=shop.server())
    assert user.json()["preferences"]["timezone"] == "Asia/Tokyo"
    assert user.json()["preferences"]["categories"] == {"marketing": False}
    assert len(user.json()["devices"]) == 1
