"""The provider credentials API on both store backends: validation, redaction, SSRF refusals."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import FakeClock
from clarion.providers.vapid import generate_vapid_keys
from clarion.store.db import Database
from tests.api.conftest import ADMIN, AppKeys, create_test_app, make_settings
from tests.api.factories import registration, webpush_subscription
from tests.providers.credential_factories import (
    PROVIDERS,
    body,
    certificate,
    key_material,
    p256_pem,
    rsa_pem,
    secrets_of,
    service_account,
)

DNS = {
    "push.example.net": ["93.184.215.14"],
    "fcm.googleapis.com": ["142.250.74.106", "2a00:1450:4007:80f::200a"],
    "updates.push.services.mozilla.com": ["34.117.65.55"],
    "push.internal.example": ["10.0.0.7"],
    "rebind.example": ["93.184.215.14", "127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "oauth2.googleapis.com": ["142.250.74.106"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    """DNS answers for the tests: no query ever leaves the process."""
    return DNS.get(host, [])


MakeApi = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_api(database: Database, tmp_path: Path, clock: FakeClock) -> AsyncIterator[MakeApi]:
    clients: list[httpx.AsyncClient] = []

    async def make(**settings: Any) -> httpx.AsyncClient:
        services = Services(
            make_settings(database, tmp_path, **settings), database, clock, resolver=fake_resolver
        )
        app = create_app(services)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://clarion.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def api(make_api: MakeApi) -> httpx.AsyncClient:
    return await make_api()


@pytest.fixture
async def shop(api: httpx.AsyncClient) -> AppKeys:
    return await create_test_app(api, "Shop")


def _url(app: AppKeys, provider: str) -> str:
    return f"/v1/apps/{app.id}/providers/{provider}"


async def _put(api: httpx.AsyncClient, app: AppKeys, provider: str, data: Any) -> httpx.Response:
    return await api.put(_url(app, provider), json=data, headers=app.server())


def _fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {error["field"] for error in response.json()["errors"]}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_good_credentials_are_accepted_and_shown_with_every_secret_redacted(
    api: httpx.AsyncClient, shop: AppKeys, provider: str, clock: FakeClock
) -> None:
    data = body(provider, clock.now())
    put = await _put(api, shop, provider, data)
    assert put.status_code == 200, put.text
    got = await api.get(_url(shop, provider), headers=shop.server())
    assert got.status_code == 200
    for response in (put, got):
        for secret in secrets_of(provider, data):
            for piece in key_material(secret):
                assert piece not in response.text
        assert "[redacted]" in response.text
        assert response.json()["status"] == "ok"
        assert response.json()["last_error"] is None
    listed = await api.get(f"/v1/apps/{shop.id}/providers", headers=shop.server())
    assert [item["provider"] for item in listed.json()["items"]] == [provider]


async def test_apns_token_view_keeps_the_identifiers(api: httpx.AsyncClient, shop: AppKeys) -> None:
    response = await _put(api, shop, "apns", body("apns"))
    shown = response.json()["configuration"]
    assert shown == {
        "auth": "token",
        "key_id": "ABC123DEFG",
        "team_id": "TEAM123456",
        "bundle_id": "com.example.app",
        "environment": "sandbox",
        "private_key": "[redacted]",
    }


BAD_BODIES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("apns", lambda b: b.update(private_key="not a key"), "private_key"),
    ("apns", lambda b: b.update(private_key=rsa_pem()), "private_key"),
    ("apns", lambda b: b.pop("key_id"), "key_id"),
    ("apns", lambda b: b.update(team_id="team"), "team_id"),
    ("apns", lambda b: b.update(bundle_id="com example"), "bundle_id"),
    ("apns", lambda b: b.update(environment="staging"), "environment"),
    ("apns", lambda b: b.update(auth="password"), "auth"),
    ("apns", lambda b: b.update(endpoint="http://api.push.apple.com"), "endpoint"),
    ("apns", lambda b: b.update(topic="x"), "topic"),
    ("fcm", lambda b: b.update(service_account="{not json"), "service_account"),
    ("fcm", lambda b: b.pop("service_account"), "service_account"),
    ("fcm", lambda b: b["service_account"].pop("project_id"), "service_account.project_id"),
    (
        "fcm",
        lambda b: b["service_account"].update(private_key="garbage"),
        "service_account.private_key",
    ),
    (
        "fcm",
        lambda b: b["service_account"].update(private_key=p256_pem()),
        "service_account.private_key",
    ),
    ("fcm", lambda b: b["service_account"].update(type="user"), "service_account.type"),
    (
        "fcm",
        lambda b: b["service_account"].update(token_uri="https://169.254.169.254/token"),
        "service_account.token_uri",
    ),
    ("webpush", lambda b: b.pop("subject"), "subject"),
    ("webpush", lambda b: b.update(subject="ops@example.com"), "subject"),
    ("webpush", lambda b: b.update(vapid_private_key=rsa_pem()), "vapid_private_key"),
    ("webpush", lambda b: b.update(endpoint="https://push.example.net"), "endpoint"),
    ("webpush", lambda b: b.update(allowed_hosts=["bad host"]), "allowed_hosts.0"),
    ("wns", lambda b: b.pop("client_secret"), "client_secret"),
    ("wns", lambda b: b.update(client_id=""), "client_id"),
    ("wns", lambda b: b.update(token_url="https://10.0.0.1/token"), "token_url"),
    ("adm", lambda b: b.update(client_secret=42), "client_secret"),
    ("adm", lambda b: b.update(endpoint="https://user:pw@api.amazon.com"), "endpoint"),
    ("hms", lambda b: b.pop("app_id"), "app_id"),
    ("hms", lambda b: b.update(endpoint="https://push-api.cloud.huawei.com:8443"), "endpoint"),
]


@pytest.mark.parametrize(("provider", "spoil", "field"), BAD_BODIES)
async def test_each_bad_input_is_422_naming_the_field(
    api: httpx.AsyncClient,
    shop: AppKeys,
    provider: str,
    spoil: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    data = body(provider)
    spoil(data)
    response = await _put(api, shop, provider, data)
    assert field in _fields(response)
    for secret in secrets_of(provider, body(provider)):
        assert secret not in response.text
    if isinstance(data.get("private_key"), str) and len(data["private_key"]) > 40:
        assert data["private_key"] not in response.text
    missing = await api.get(_url(shop, provider), headers=shop.server())
    assert missing.status_code == 404


async def test_every_bad_field_is_named_in_one_answer(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    response = await _put(api, shop, "apns", {"auth": "token", "private_key": "x"})
    assert _fields(response) >= {"key_id", "team_id", "bundle_id", "private_key"}


async def test_unknown_provider_is_422_naming_provider(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    for request in (
        api.put(_url(shop, "pager"), json={}, headers=shop.server()),
        api.get(_url(shop, "pager"), headers=shop.server()),
        api.delete(_url(shop, "pager"), headers=shop.server()),
    ):
        assert _fields(await request) == {"provider"}


async def test_body_must_be_an_object(api: httpx.AsyncClient, shop: AppKeys) -> None:
    response = await _put(api, shop, "wns", ["client_id"])
    assert response.status_code == 422


async def test_delete_removes_the_credential_and_a_second_delete_is_404(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    await _put(api, shop, "hms", body("hms"))
    first = await api.delete(_url(shop, "hms"), headers=shop.server())
    assert first.status_code == 204
    assert (await api.get(_url(shop, "hms"), headers=shop.server())).status_code == 404
    second = await api.delete(_url(shop, "hms"), headers=shop.server())
    assert second.status_code == 404


async def test_replacing_a_credential_bumps_its_version(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    first = await _put(api, shop, "adm", body("adm"))
    second = await _put(api, shop, "adm", body("adm"))
    assert (first.json()["version"], second.json()["version"]) == (1, 2)


async def test_webpush_key_pair_is_generated_and_only_the_public_key_is_returned(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    response = await _put(api, shop, "webpush", {"subject": "mailto:ops@example.com"})
    answer = response.json()
    public_key = answer["vapid_public_key"]
    assert len(public_key) == 87 and "PRIVATE" not in response.text
    assert answer["configuration"]["vapid_private_key"] == "[redacted]"
    assert any("generated" in warning for warning in answer["warnings"])
    read = await api.get(f"/v1/apps/{shop.id}/webpush/public-key", headers=shop.client())
    assert read.status_code == 200
    assert read.json() == {"vapid_public_key": public_key}


async def test_given_vapid_key_is_kept_and_its_public_key_served(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    pair = generate_vapid_keys()
    data = {"subject": "https://shop.example.com/contact", "vapid_private_key": pair.private_pem}
    response = await _put(api, shop, "webpush", data)
    assert response.json()["vapid_public_key"] == pair.public_key
    assert response.json()["warnings"] == []
    read = await api.get(f"/v1/apps/{shop.id}/webpush/public-key", headers=shop.client())
    assert read.json()["vapid_public_key"] == pair.public_key


async def test_public_key_is_404_before_webpush_is_configured(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    read = await api.get(f"/v1/apps/{shop.id}/webpush/public-key", headers=shop.client())
    assert read.status_code == 404


async def test_certificate_expiring_within_30_days_warns_and_get_shows_the_expiry(
    api: httpx.AsyncClient, shop: AppKeys, clock: FakeClock
) -> None:
    cert, key = certificate(clock.now(), days=10)
    data = {"auth": "certificate", "certificate": cert, "private_key": key}
    data |= {"bundle_id": "com.example.app", "environment": "production"}
    response = await _put(api, shop, "apns", data)
    assert response.status_code == 200, response.text
    assert "within 30 days" in response.json()["warnings"][0]
    got = (await api.get(_url(shop, "apns"), headers=shop.server())).json()
    assert got["expires_at"].startswith(str(clock.now().date() + timedelta(days=10)))
    assert got["configuration"]["certificate"]["subject"].endswith("UID=com.example.app")
    assert key_material(key)[0] not in response.text + str(got)


async def test_certificate_problems_are_named(
    api: httpx.AsyncClient, shop: AppKeys, clock: FakeClock
) -> None:
    expired, expired_key = certificate(clock.now(), days=-1)
    good, _ = certificate(clock.now())
    _, other_key = certificate(clock.now())
    base = {"auth": "certificate", "bundle_id": "com.example.app"}
    cases = [
        ({"certificate": expired, "private_key": expired_key}, "certificate"),
        (
            {"certificate": "-----BEGIN CERTIFICATE-----\nxx", "private_key": other_key},
            "certificate",
        ),
        ({"certificate": good, "private_key": other_key}, "private_key"),
        ({"certificate": good, "private_key": "nope"}, "private_key"),
    ]
    for extra, field in cases:
        response = await _put(api, shop, "apns", base | extra)
        assert field in _fields(response), response.text


async def test_other_apps_keys_get_404_and_the_client_key_may_not_write(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    other = await create_test_app(api, "Other")
    await _put(api, shop, "wns", body("wns"))
    assert (await api.get(_url(shop, "wns"), headers=other.server())).status_code == 404
    assert (await _put(api, other, "wns", body("wns"))).status_code == 200
    response = await api.put(_url(shop, "wns"), json=body("wns"), headers=shop.client())
    assert response.status_code == 403
    assert (await api.get(_url(shop, "wns"), headers=ADMIN)).status_code == 200
    stranger = await api.get(f"/v1/apps/{shop.id}/webpush/public-key", headers=other.client())
    assert stranger.status_code == 404


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://api.push.apple.com",
        "https://127.0.0.1",
        "https://[::1]",
        "https://169.254.169.254",
        "https://10.0.0.1",
        "https://192.168.1.1",
        "https://localhost",
        "https://user:secret@api.push.apple.com",
        "https://api.push.apple.com:8443",
        "https://push.internal.example",
        "https://rebind.example",
        "https://2130706433",
    ],
)
async def test_endpoint_override_is_refused_when_it_could_reach_inside(
    api: httpx.AsyncClient, shop: AppKeys, endpoint: str
) -> None:
    response = await _put(api, shop, "apns", body("apns") | {"endpoint": endpoint})
    assert _fields(response) == {"endpoint"}


async def test_loopback_endpoint_is_allowed_only_with_the_private_endpoints_setting(
    make_api: MakeApi,
) -> None:
    api = await make_api(allow_private_endpoints=True)
    shop = await create_test_app(api)
    ok = await _put(api, shop, "apns", body("apns") | {"endpoint": "https://127.0.0.1:8443"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["configuration"]["endpoint"] == "https://127.0.0.1:8443"
    for endpoint in ("https://169.254.169.254", "https://10.0.0.1", "https://metadata.example"):
        refused = await _put(api, shop, "hms", body("hms") | {"endpoint": endpoint})
        assert _fields(refused) == {"endpoint"}


async def test_fcm_token_uri_resolving_inside_is_refused(
    api: httpx.AsyncClient, shop: AppKeys
) -> None:
    data = {"service_account": service_account("https://push.internal.example/token")}
    response = await _put(api, shop, "fcm", data)
    assert _fields(response) == {"service_account.token_uri"}


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.net/wpush/a",
        "https://127.0.0.1/wpush/a",
        "https://[::1]/wpush/a",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/wpush/a",
        "https://192.168.1.1/wpush/a",
        "https://[::ffff:169.254.169.254]/a",
        "https://100.64.0.1/a",
        "https://[fd00::1]/a",
        "https://localhost/wpush/a",
        "https://user:pw@push.example.net/wpush/a",
        "https://push.example.net:8443/wpush/a",
        "https://push.internal.example/wpush/a",
        "https://metadata.example/wpush/a",
        "https://0x7f.1/wpush/a",
    ],
)
async def test_webpush_endpoint_that_could_reach_inside_is_refused_at_registration(
    api: httpx.AsyncClient, shop: AppKeys, endpoint: str
) -> None:
    response = await api.post(
        f"/v1/apps/{shop.id}/devices",
        json={"platform": "webpush", "token": webpush_subscription(endpoint)},
        headers=shop.client(),
    )
    assert _fields(response) == {"token.endpoint"}


async def test_public_webpush_endpoint_is_registered(api: httpx.AsyncClient, shop: AppKeys) -> None:
    response = await api.post(
        f"/v1/apps/{shop.id}/devices",
        json={"platform": "webpush", "token": webpush_subscription()},
        headers=shop.client(),
    )
    assert response.status_code == 201, response.text


async def test_with_private_endpoints_loopback_devices_register_but_metadata_never(
    make_api: MakeApi,
) -> None:
    api = await make_api(allow_private_endpoints=True)
    shop = await create_test_app(api)
    devices = f"/v1/apps/{shop.id}/devices"
    loopback = webpush_subscription("https://127.0.0.1:9443/wpush/a")
    ok = await api.post(
        devices, json={"platform": "webpush", "token": loopback}, headers=shop.client()
    )
    assert ok.status_code == 201, ok.text
    wns_ok = registration("wns", token="https://127.0.0.1:9444/?token=abc")
    assert (await api.post(devices, json=wns_ok, headers=shop.client())).status_code == 201
    for token in ("https://169.254.169.254/?token=abc", "https://10.0.0.1/?token=abc"):
        refused = await api.post(
            devices, json=registration("wns", token=token), headers=shop.client()
        )
        assert _fields(refused) == {"token"}


async def test_app_allow_list_limits_webpush_hosts(api: httpx.AsyncClient, shop: AppKeys) -> None:
    data = {"subject": "mailto:ops@example.com", "allowed_hosts": ["*.push.services.mozilla.com"]}
    assert (await _put(api, shop, "webpush", data)).status_code == 200
    devices = f"/v1/apps/{shop.id}/devices"
    mozilla = webpush_subscription("https://updates.push.services.mozilla.com/wpush/v2/x")
    google = webpush_subscription("https://fcm.googleapis.com/fcm/send/x")
    ok = await api.post(
        devices, json={"platform": "webpush", "token": mozilla}, headers=shop.client()
    )
    assert ok.status_code == 201, ok.text
    refused = await api.post(
        devices, json={"platform": "webpush", "token": google}, headers=shop.client()
    )
    assert _fields(refused) == {"token.endpoint"}


async def test_database_file_and_logs_never_hold_plaintext_key_material(
    make_api: MakeApi, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if not database.is_sqlite:
        pytest.skip("the file grep needs the SQLite file")
    caplog.set_level(logging.DEBUG)
    api = await make_api()
    shop = await create_test_app(api)
    material: list[str] = []
    for provider in PROVIDERS:
        data = body(provider)
        if provider == "webpush":
            data["vapid_private_key"] = generate_vapid_keys().private_pem
        assert (await _put(api, shop, provider, data)).status_code == 200
        await api.get(_url(shop, provider), headers=shop.server())
        bad = dict(data) | {"environment": "nowhere"} if provider == "apns" else data | {"x": 1}
        assert (await _put(api, shop, provider, bad)).status_code == 422
        material += [piece for s in secrets_of(provider, data) for piece in key_material(s)]
    await database.dispose()
    path = Path(database.url.removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    assert b"ABC123DEFG" in stored  # the public view is stored in clear ...
    for piece in material:
        assert piece.encode() not in stored  # ... no secret is
        assert piece not in caplog.text
