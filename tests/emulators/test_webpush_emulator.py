"""The Web Push emulator checks pushes like a real push service and decrypts them like a browser."""

import asyncio
import base64
import json
import ssl
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
import requests
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from clarion.clock import FakeClock
from clarion.emulators.recording import Fault
from clarion.emulators.webpush import WebPushEmulator
from clarion.model.message import WebPushSubscription
from clarion.providers.vapid import generate_vapid_keys, load_private_key
from clarion.providers.webpush_crypto import b64url_decode, encrypt

KEYS = generate_vapid_keys()
OTHER_KEYS = generate_vapid_keys()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[WebPushEmulator]:
    async with WebPushEmulator(clock=clock) as emu:
        yield emu


@pytest.fixture
async def client(emulator: WebPushEmulator) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    async with httpx.AsyncClient(verify=context, http2=True) as http:
        yield http


def _subscription_info(subscription: WebPushSubscription) -> dict[str, Any]:
    keys = {"p256dh": subscription.p256dh, "auth": subscription.auth}
    return {"endpoint": subscription.endpoint, "keys": keys}


def _pywebpush(
    emulator: WebPushEmulator, subscription: WebPushSubscription, pem: str
) -> tuple[int, dict[str, str], bytes]:
    """Push with pywebpush; status, headers and body, read before the connection is let go.

    A `requests` response kept alive holds its connection open, which would
    keep the emulator from shutting down, so nothing of it escapes.
    """
    session = requests.Session()
    # REQUESTS_CA_BUNDLE in the environment would override session.verify, so ignore it.
    session.trust_env = False
    session.verify = str(emulator.ca_file)
    try:
        response = webpush(
            _subscription_info(subscription),
            data=json.dumps({"title": "from pywebpush"}),
            vapid_private_key=Vapid02.from_pem(pem.encode()),
            vapid_claims={"sub": "mailto:ops@example.com"},
            ttl=60,
            requests_session=session,
        )
    except WebPushException as exc:
        response = exc.response
    try:
        return response.status_code, dict(response.headers), response.content
    finally:
        response.close()
        session.close()


def _jwt(claims: dict[str, Any], pem: str = KEYS.private_pem) -> str:
    return jwt.encode(claims, load_private_key(pem), algorithm="ES256")


def _valid_request(
    emulator: WebPushEmulator, subscription: WebPushSubscription, **claims: Any
) -> tuple[dict[str, str], bytes]:
    body = encrypt(
        b'{"title":"hi"}', b64url_decode(subscription.p256dh), b64url_decode(subscription.auth)
    )
    now = int(emulator.clock.now().timestamp())
    all_claims = {"aud": emulator.url, "exp": now + 3600, "sub": "mailto:ops@example.com"}
    token = _jwt({k: v for k, v in (all_claims | claims).items() if v is not None})
    headers = {
        "TTL": "60",
        "Content-Encoding": "aes128gcm",
        "Authorization": f"vapid t={token}, k={KEYS.public_key}",
    }
    return headers, body


# --- a third-party client ------------------------------------------------------------------


async def test_pywebpush_push_is_accepted_and_decrypted() -> None:
    async with WebPushEmulator() as emulator:
        subscription = emulator.subscribe(application_server_key=KEYS.public_key)
        status, headers, _body = await asyncio.to_thread(
            _pywebpush, emulator, subscription, KEYS.private_pem
        )
        assert status == 201
        assert headers["location"].startswith(emulator.url + "/m/")
        assert headers["ttl"] == "60"
        assert emulator.received(subscription) == [b'{"title": "from pywebpush"}']
        assert emulator.state.requests[0].headers["authorization"].startswith("vapid t=")


async def test_pywebpush_with_a_key_other_than_the_subscriptions_is_forbidden() -> None:
    async with WebPushEmulator() as emulator:
        subscription = emulator.subscribe(application_server_key=KEYS.public_key)
        status, _headers, body = await asyncio.to_thread(
            _pywebpush, emulator, subscription, OTHER_KEYS.private_pem
        )
        assert status == 403
        assert json.loads(body)["errno"] == 109
        assert emulator.received(subscription) == []


# --- checks a push service makes ----------------------------------------------------------


async def test_a_valid_push_gets_201_with_location_and_the_kept_ttl(
    emulator: WebPushEmulator, client: httpx.AsyncClient
) -> None:
    subscription = emulator.subscribe()
    headers, body = _valid_request(emulator, subscription)
    headers["TTL"] = str(90 * 24 * 3600)
    response = await client.post(subscription.endpoint, headers=headers, content=body)
    assert response.status_code == 201
    assert response.headers["ttl"] == str(30 * 24 * 3600)
    assert emulator.received(subscription) == [b'{"title":"hi"}']


@pytest.mark.parametrize(
    ("change", "status", "errno"),
    [
        ({"TTL": None}, 400, 111),
        ({"TTL": "soon"}, 400, 112),
        ({"Urgency": "urgent"}, 400, 110),
        ({"Topic": "t" * 33}, 400, 113),
        ({"Topic": "has space"}, 400, 113),
        ({"Content-Encoding": "aesgcm"}, 400, 110),
        ({"Authorization": None}, 401, 109),
        ({"Authorization": "WebPush abc"}, 401, 109),
        ({"Authorization": "vapid t=abc"}, 401, 109),
    ],
)
async def test_bad_headers_are_refused_with_autopush_errnos(
    emulator: WebPushEmulator,
    client: httpx.AsyncClient,
    change: dict[str, str | None],
    status: int,
    errno: int,
) -> None:
    subscription = emulator.subscribe()
    headers, body = _valid_request(emulator, subscription)
    for name, value in change.items():
        headers.pop(name, None)
        if value is not None:
            headers[name] = value
    response = await client.post(subscription.endpoint, headers=headers, content=body)
    assert response.status_code == status
    assert response.json()["errno"] == errno
    assert emulator.received(subscription) == []


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "https://push.example.net"}, "Audience"),
        ({"exp": 25 * 3600}, "24 hours"),
        ({"exp": -60}, "expired"),
        ({"sub": None}, "sub"),
    ],
)
async def test_vapid_claims_are_checked_against_the_origin_and_the_clock(
    emulator: WebPushEmulator, client: httpx.AsyncClient, claims: dict[str, Any], message: str
) -> None:
    subscription = emulator.subscribe()
    if isinstance(claims.get("exp"), int):
        claims["exp"] += int(emulator.clock.now().timestamp())
    headers, body = _valid_request(emulator, subscription, **claims)
    response = await client.post(subscription.endpoint, headers=headers, content=body)
    assert response.status_code == 403
    assert message in response.json()["message"]


async def test_a_jwt_not_signed_by_the_announced_key_is_forbidden(
    emulator: WebPushEmulator, client: httpx.AsyncClient
) -> None:
    subscription = emulator.subscribe()
    headers, body = _valid_request(emulator, subscription)
    now = int(emulator.clock.now().timestamp())
    forged = _jwt(
        {"aud": emulator.url, "exp": now + 60, "sub": "mailto:x@y.z"}, OTHER_KEYS.private_pem
    )
    headers["Authorization"] = f"vapid t={forged},k={KEYS.public_key}"
    response = await client.post(subscription.endpoint, headers=headers, content=body)
    assert response.status_code == 403


async def test_a_body_over_4096_bytes_is_too_large(
    emulator: WebPushEmulator, client: httpx.AsyncClient
) -> None:
    subscription = emulator.subscribe()
    headers, _body = _valid_request(emulator, subscription)
    response = await client.post(subscription.endpoint, headers=headers, content=b"x" * 4097)
    assert response.status_code == 413
    assert response.json()["errno"] == 104


async def test_an_undecryptable_body_is_refused_loudly(
    emulator: WebPushEmulator, client: httpx.AsyncClient
) -> None:
    subscription = emulator.subscribe()
    other = emulator.subscribe()
    headers, body = _valid_request(emulator, other)
    response = await client.post(subscription.endpoint, headers=headers, content=body)
    assert response.status_code == 400
    assert "Undecryptable" in response.json()["message"]


async def test_unknown_expired_and_unsubscribed_endpoints(
    emulator: WebPushEmulator, client: httpx.AsyncClient
) -> None:
    expired, gone = emulator.subscribe(), emulator.subscribe()
    emulator.expire(expired)
    emulator.unsubscribe(gone)
    headers, body = _valid_request(emulator, expired)
    statuses = [
        (await client.post(url, headers=headers, content=body)).status_code
        for url in (emulator.url + "/wpush/nobody", expired.endpoint, gone.endpoint)
    ]
    assert statuses == [404, 404, 410]


async def test_faults_answer_before_any_check_and_can_be_delayed(
    emulator: WebPushEmulator, client: httpx.AsyncClient
) -> None:
    subscription = emulator.subscribe()
    emulator.state.faults.set_all(
        Fault(status=429, headers={"retry-after": "120"}, delay=0.1, times=1)
    )
    started = time.monotonic()
    throttled = await client.post(subscription.endpoint, content=b"")
    assert time.monotonic() - started >= 0.1
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "120"
    assert (await client.post(subscription.endpoint, content=b"")).status_code == 400


async def test_subscriptions_can_be_minted_over_http_and_inspected(
    emulator: WebPushEmulator, client: httpx.AsyncClient
) -> None:
    minted = await client.post(
        emulator.url + "/_emulator/subscriptions", json={"unifiedpush": True}
    )
    assert minted.status_code == 201
    info = minted.json()
    assert "/UP?token=" in info["endpoint"]
    subscription = WebPushSubscription(
        info["endpoint"], info["keys"]["p256dh"], info["keys"]["auth"]
    )
    headers, body = _valid_request(emulator, subscription)
    assert (
        await client.post(subscription.endpoint, headers=headers, content=body)
    ).status_code == 201
    items = (await client.get(emulator.url + "/_emulator/requests")).json()["items"]
    assert base64.b64decode(items[0]["decrypted"]) == b'{"title":"hi"}'
    assert items[0]["http_version"] == "2"
