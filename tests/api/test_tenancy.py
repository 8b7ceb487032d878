"""A key of app A never reaches app B: every app-scoped route answers 404.

The routes are read from the application's own OpenAPI document, so a route added later is
covered without editing this test.
"""

import re

import httpx
import pytest

from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import FakeClock
from clarion.config import Settings
from clarion.store.db import Database
from tests.api.conftest import ADMIN, AppKeys, create_test_app
from tests.api.factories import registration
from tests.store.dump import dump_database


def _app_routes() -> list[tuple[str, str]]:
    database = Database("sqlite:///:memory:")  # never connected: only the routes are read
    app = create_app(Services(Settings(database_url=database.url), database, FakeClock()))
    found = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/v1/apps/{app_id}"):
            found += [(method.upper(), path) for method in sorted(operations)]
    return found


APP_ROUTES = _app_routes()


def test_route_discovery_finds_the_app_scoped_api() -> None:
    paths = {path for _, path in APP_ROUTES}
    assert "/v1/apps/{app_id}/devices/{device_id}" in paths
    assert len(APP_ROUTES) >= 15


@pytest.mark.parametrize("role", ["server", "client"])
async def test_another_apps_key_gets_404_on_every_app_route(
    api: httpx.AsyncClient, shop: AppKeys, role: str
) -> None:
    other = await create_test_app(api, "Other")
    device = await api.post(
        f"/v1/apps/{other.id}/devices",
        json=registration("fcm", user_id="u-1"),
        headers=other.client(),
    )
    values = {"app_id": other.id, "device_id": device.json()["id"], "user_id": "u-1"}
    headers = shop.server() if role == "server" else shop.client()
    failures = []
    for method, template in APP_ROUTES:
        url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "news"), template)
        body = {} if method in {"POST", "PUT", "PATCH"} else None
        response = await api.request(method, url, json=body, headers=headers)
        if response.status_code != 404:
            failures.append(f"{method} {template} -> {response.status_code}")
    assert failures == []
    still = await api.get(f"/v1/apps/{other.id}/devices/{values['device_id']}", headers=ADMIN)
    assert still.status_code == 200
    assert still.json()["user_id"] == "u-1"


async def test_revoked_key_is_refused(api: httpx.AsyncClient, shop: AppKeys) -> None:
    created = await api.post(
        f"/v1/apps/{shop.id}/keys", json={"role": "server"}, headers=shop.server()
    )
    assert created.status_code == 201
    key = created.json()
    headers = {"authorization": f"Bearer {key['key']}"}
    assert (await api.get(f"/v1/apps/{shop.id}", headers=headers)).status_code == 200
    revoked = await api.delete(f"/v1/apps/{shop.id}/keys/{key['id']}", headers=shop.server())
    assert revoked.status_code == 204
    refused = await api.get(f"/v1/apps/{shop.id}", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


async def test_keys_are_listed_without_their_secret(api: httpx.AsyncClient, shop: AppKeys) -> None:
    listed = await api.get(f"/v1/apps/{shop.id}/keys", headers=shop.server())
    text = listed.text
    assert shop.server_key not in text
    assert shop.client_key not in text
    assert {k["role"] for k in listed.json()["items"]} == {"server", "client"}


async def test_only_the_admin_creates_apps(api: httpx.AsyncClient, shop: AppKeys) -> None:
    response = await api.post("/v1/apps", json={"name": "Mine"}, headers=shop.server())
    assert response.status_code == 403
    anonymous = await api.post("/v1/apps", json={"name": "Mine"})
    assert anonymous.status_code == 401
    wrong = await api.post(
        "/v1/apps", json={"name": "Mine"}, headers={"authorization": "Bearer clr_adm_nope"}
    )
    assert wrong.status_code == 401


async def test_key_role_must_be_server_or_client(api: httpx.AsyncClient, shop: AppKeys) -> None:
    for role in ("admin", "root"):
        response = await api.post(
            f"/v1/apps/{shop.id}/keys", json={"role": role}, headers=shop.server()
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "role"


async def test_stored_keys_are_only_hashes(
    api: httpx.AsyncClient, shop: AppKeys, database: Database
) -> None:
    dump = await dump_database(database)
    assert shop.server_key not in dump
    assert shop.client_key not in dump
