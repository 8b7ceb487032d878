"""WebPushProvider: rendering, VAPID and classification, over real sockets to the emulator."""

import importlib.util
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import http_ece
import jwt
import pytest

from clarion.clock import FakeClock
from clarion.emulators.recording import Fault
from clarion.emulators.webpush import WebPushEmulator
from clarion.model.content import Action, Content
from clarion.model.message import Message, Priority, Recipient, WebPushSubscription
from clarion.model.outcome import AuthFailed, InvalidToken, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import (
    HttpRequest,
    HttpResponse,
    InvalidCredentials,
    PayloadTooLarge,
    Transport,
)
from clarion.providers.httpx_transport import HttpxTransport
from clarion.providers.vapid import (
    VapidSigner,
    generate_vapid_keys,
    load_private_key,
    origin_of,
    vapid_public_key,
)
from clarion.providers.webpush import (
    DEFAULT_TTL,
    WebPushCredentials,
    WebPushProvider,
    render_payload,
    topic_for,
)
from clarion.providers.webpush_crypto import b64url_decode, load_public_point

KEYS = generate_vapid_keys()
CREDENTIALS = WebPushCredentials(KEYS.private_pem, "mailto:ops@example.com")


def _transport_factories() -> list[Any]:
    params = [pytest.param(lambda ca: HttpxTransport(ca_file=ca), id="httpx")]
    if importlib.util.find_spec("clarion.providers.curl_transport") is not None:
        from clarion.providers.curl_transport import CurlTransport

        params.append(pytest.param(lambda ca: CurlTransport(ca_file=ca), id="curl"))
    return params


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[WebPushEmulator]:
    async with WebPushEmulator(clock=clock) as emu:
        yield emu


@pytest.fixture(params=_transport_factories())
async def transport(
    request: pytest.FixtureRequest, emulator: WebPushEmulator
) -> AsyncIterator[Transport]:
    factory: Callable[[Path | None], Transport] = request.param
    chosen = factory(emulator.ca_file)
    yield chosen
    await chosen.aclose()


@pytest.fixture
def provider(transport: Transport, clock: FakeClock) -> WebPushProvider:
    return WebPushProvider(CREDENTIALS, transport, clock=clock)


def _message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "content": Content(title="Your order shipped", body="Arrives Thursday"),
        "push_id": uuid.uuid4(),
        "ttl": 3600,
    }
    return Message(**(fields | changes))


def _recipient(subscription: WebPushSubscription) -> Recipient:
    return Recipient("dev-1", Platform.WEBPUSH, subscription.endpoint, subscription=subscription)


class _NoWire:
    """A transport for tests that must never reach the wire."""

    async def request(self, request: HttpRequest) -> HttpResponse:
        raise AssertionError(f"unexpected request to {request.url}")

    async def aclose(self) -> None:
        return None


def _offline_provider(clock: FakeClock | None = None) -> WebPushProvider:
    return WebPushProvider(CREDENTIALS, _NoWire(), clock=clock or FakeClock())


FAKE_SUBSCRIPTION = WebPushSubscription(
    "https://push.example.net/wpush/abc",
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
    "BTBZMqHH6r4Tts7J_aSIgg",
)


# --- over real sockets -------------------------------------------------------------------


async def test_push_is_accepted_and_decrypts_to_the_rendered_json(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe(application_server_key=provider.public_key)
    message = _message(
        content=Content(
            title="Your order shipped",
            body="Arrives Thursday",
            image="https://example.com/box.png",
            url="https://shop.example.com/orders/1234",
            data={"order_id": "1234"},
            actions=(Action("track", "Track", "https://shop.example.com/track/1234"),),
        ),
        collapse_key="order-1234",
    )
    outcome = await provider.send(message, _recipient(subscription))
    assert isinstance(outcome, Sent)
    assert outcome.provider_id is not None
    assert outcome.provider_id.startswith(emulator.url + "/m/")
    assert [json.loads(p) for p in emulator.received(subscription)] == [render_payload(message)]
    recorded = emulator.state.requests[0]
    assert recorded.headers["ttl"] == "3600"
    assert recorded.headers["urgency"] == "high"
    assert recorded.headers["topic"] == "order-1234"
    assert recorded.headers["content-type"] == "application/octet-stream"


async def test_expired_subscription_is_an_invalid_token(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    emulator.expire(subscription)
    outcome = await provider.send(_message(), _recipient(subscription))
    assert isinstance(outcome, InvalidToken)
    assert outcome.reason.startswith("subscription_expired")


async def test_unsubscribed_subscription_is_an_invalid_token(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    emulator.unsubscribe(subscription)
    outcome = await provider.send(_message(), _recipient(subscription))
    assert outcome == InvalidToken("unsubscribed: Subscription is no longer valid")


async def test_throttled_push_is_retried_after_the_services_delay(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    token = subscription.endpoint.rsplit("/", 1)[1]
    emulator.state.faults.set(
        token, Fault(status=429, headers={"retry-after": "120"}, body={"errno": 201}, times=1)
    )
    first = await provider.send(_message(), _recipient(subscription))
    second = await provider.send(_message(), _recipient(subscription))
    assert isinstance(first, Retry)
    assert first.after == 120.0
    assert isinstance(second, Sent)


async def test_service_errors_are_retried(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    emulator.state.faults.set_all(Fault(status=503, headers={"retry-after": "7"}, times=1))
    outcome = await provider.send(_message(), _recipient(subscription))
    assert outcome == Retry("push_service_error 503", 7.0)


async def test_a_413_from_the_service_rejects_the_push(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    emulator.state.faults.set_all(Fault(status=413, body={"errno": 104, "message": "Too big"}))
    outcome = await provider.send(_message(), _recipient(subscription))
    assert outcome == Rejected("payload_too_large: Too big")


async def test_too_large_payload_is_refused_before_any_request(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    message = _message(content=Content(title="Big", body="x" * 4000))
    with pytest.raises(PayloadTooLarge) as info:
        provider.render(message, _recipient(subscription))
    assert info.value.limit == 3993
    outcome = await provider.send(message, _recipient(subscription))
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("payload_too_large")
    assert emulator.state.requests == []


async def test_subscription_restricted_to_another_key_fails_auth(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe(application_server_key=generate_vapid_keys().public_key)
    outcome = await provider.send(_message(), _recipient(subscription))
    assert isinstance(outcome, AuthFailed)
    assert "does not match" in outcome.reason


async def test_long_collapse_key_reaches_the_service_as_a_derived_topic(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    key = "order 1234: shipped / out for delivery, the long version"
    outcome = await provider.send(_message(collapse_key=key), _recipient(subscription))
    assert isinstance(outcome, Sent)
    assert emulator.state.requests[0].headers["topic"] == topic_for(key)


async def test_unifiedpush_endpoint_takes_the_same_request(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe(unifiedpush=True)
    assert "/UP?token=" in subscription.endpoint
    outcome = await provider.send(_message(), _recipient(subscription))
    assert isinstance(outcome, Sent)
    assert json.loads(emulator.received(subscription)[0])["title"] == "Your order shipped"


async def test_one_vapid_jwt_serves_many_pushes_until_the_clock_nears_its_expiry(
    provider: WebPushProvider, emulator: WebPushEmulator, clock: FakeClock
) -> None:
    subscription = emulator.subscribe()
    for _ in range(3):
        assert isinstance(await provider.send(_message(), _recipient(subscription)), Sent)
    clock.advance(11.5 * 3600)
    assert isinstance(await provider.send(_message(), _recipient(subscription)), Sent)
    authorizations = [r.headers["authorization"] for r in emulator.state.requests]
    assert len(set(authorizations[:3])) == 1
    assert authorizations[3] != authorizations[0]


async def test_each_push_body_is_encrypted_afresh(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    message = _message()
    await provider.send(message, _recipient(subscription))
    await provider.send(message, _recipient(subscription))
    first, second = (r.body for r in emulator.state.requests)
    assert first != second
    assert emulator.received(subscription)[0] == emulator.received(subscription)[1]


async def test_http_ece_decrypts_the_body_sent_on_the_wire(
    provider: WebPushProvider, emulator: WebPushEmulator
) -> None:
    subscription = emulator.subscribe()
    await provider.send(_message(), _recipient(subscription))
    subscriber = next(iter(emulator.subscribers.values()))
    plaintext = http_ece.decrypt(
        emulator.state.requests[0].body,
        private_key=subscriber.private_key,
        auth_secret=subscriber.auth_secret,
        version="aes128gcm",
    )
    assert json.loads(plaintext)["body"] == "Arrives Thursday"


# --- VAPID ---------------------------------------------------------------------------------


def test_pyjwt_verifies_our_vapid_jwt_with_origin_audience_and_12h_expiry() -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    signer = VapidSigner(load_private_key(KEYS.private_pem), "mailto:ops@example.com", clock=clock)
    header = signer.authorization("https://fcm.googleapis.com:443/fcm/send/abc?x=1")
    scheme, _, params = header.partition(" ")
    token = params.split(", ")[0].removeprefix("t=")
    assert scheme == "vapid"
    assert params.split(", ")[1] == f"k={KEYS.public_key}"
    public = load_public_point(b64url_decode(KEYS.public_key))
    assert jwt.get_unverified_header(token) == {"typ": "JWT", "alg": "ES256"}
    claims = jwt.decode(
        token,
        public,
        algorithms=["ES256"],
        audience="https://fcm.googleapis.com",
        options={"verify_exp": False},
    )
    expected_exp = int((clock.now() + timedelta(hours=12)).timestamp())
    assert claims == {
        "aud": "https://fcm.googleapis.com",
        "exp": expected_exp,
        "sub": "mailto:ops@example.com",
    }


def test_vapid_jwt_is_cached_per_push_service_origin() -> None:
    clock = FakeClock()
    signer = VapidSigner(load_private_key(KEYS.private_pem), "https://example.com", clock=clock)
    a = signer.token_for("https://updates.push.services.mozilla.com/wpush/v2/a")
    b = signer.token_for("https://updates.push.services.mozilla.com/wpush/v2/b")
    c = signer.token_for("https://web.push.apple.com/xyz")
    d = signer.token_for("https://127.0.0.1:8443/UP?token=1")
    assert a == b
    assert len({a, c, d}) == 3
    assert jwt.decode(d, options={"verify_signature": False})["aud"] == "https://127.0.0.1:8443"


def test_vapid_jwt_is_refreshed_only_within_the_margin_before_expiry() -> None:
    clock = FakeClock()
    signer = VapidSigner(load_private_key(KEYS.private_pem), "mailto:a@b.c", clock=clock)
    first = signer.token_for("https://push.example.net/1")
    clock.advance(10 * 3600)
    assert signer.token_for("https://push.example.net/1") == first
    clock.advance(3600 + 1)
    refreshed = signer.token_for("https://push.example.net/1")
    assert refreshed != first
    new_exp = jwt.decode(refreshed, options={"verify_signature": False})["exp"]
    assert new_exp == int(clock.now().timestamp()) + 12 * 3600


def test_generated_public_key_belongs_to_the_generated_private_key() -> None:
    keys = generate_vapid_keys()
    provider = WebPushProvider(WebPushCredentials(keys.private_pem, "mailto:a@b.c"), _NoWire())
    assert provider.public_key == keys.public_key == vapid_public_key(keys.private_pem)
    assert len(b64url_decode(keys.public_key)) == 65


@pytest.mark.parametrize(
    ("pem", "subject"),
    [
        ("not a key", "mailto:ops@example.com"),
        (KEYS.private_pem, "ops@example.com"),
        (KEYS.private_pem, "http://example.com"),
    ],
)
def test_unusable_credentials_are_refused_when_the_provider_is_built(
    pem: str, subject: str
) -> None:
    with pytest.raises(InvalidCredentials):
        WebPushProvider(WebPushCredentials(pem, subject), _NoWire())


# --- rendering -----------------------------------------------------------------------------


def test_headers_follow_ttl_priority_and_collapse_key() -> None:
    provider = _offline_provider()
    message = _message(ttl=None, priority=Priority.NORMAL, collapse_key="news")
    headers = dict(provider.render(message, _recipient(FAKE_SUBSCRIPTION)).headers)
    assert headers == {
        "TTL": str(DEFAULT_TTL),
        "Urgency": "normal",
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "Topic": "news",
    }


def test_zero_ttl_means_deliver_now_or_never() -> None:
    request = _offline_provider().render(_message(ttl=0), _recipient(FAKE_SUBSCRIPTION))
    assert dict(request.headers)["TTL"] == "0"


def test_ttl_shrinks_to_the_time_left_before_the_push_expires() -> None:
    clock = FakeClock()
    message = _message(ttl=3600, expires_at=clock.now() + timedelta(seconds=600))
    request = _offline_provider(clock).render(message, _recipient(FAKE_SUBSCRIPTION))
    assert dict(request.headers)["TTL"] == "600"


def test_webpush_object_sets_urgency_and_merges_into_the_payload() -> None:
    message = _message(
        content=Content(title="T", body="B", data={"a": 1}),
        overrides={"urgency": "very-low", "icon": "/i.png", "data": {"b": 2}, "title": None},
    )
    request = _offline_provider().render(message, _recipient(FAKE_SUBSCRIPTION))
    assert dict(request.headers)["Urgency"] == "very-low"
    payload = render_payload(message)
    assert payload == {
        "push_id": str(message.push_id),
        "body": "B",
        "icon": "/i.png",
        "data": {"a": 1, "b": 2},
    }


async def test_push_with_nothing_to_show_is_refused_because_browsers_demand_a_notification() -> (
    None
):
    silent = _message(content=Content(data={"sync": True}))
    outcome = await _offline_provider().send(silent, _recipient(FAKE_SUBSCRIPTION))
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("not_user_visible")
    titled_by_override = _message(
        content=Content(data={"sync": True}), overrides={"title": "Synced"}
    )
    request = _offline_provider().render(titled_by_override, _recipient(FAKE_SUBSCRIPTION))
    assert len(request.body) > 86


async def test_invalid_urgency_override_rejects_the_push() -> None:
    outcome = await _offline_provider().send(
        _message(overrides={"urgency": "urgent"}), _recipient(FAKE_SUBSCRIPTION)
    )
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("invalid_override")


async def test_subscription_with_broken_keys_is_an_invalid_token() -> None:
    broken = WebPushSubscription(FAKE_SUBSCRIPTION.endpoint, "BAAA", FAKE_SUBSCRIPTION.auth)
    outcome = await _offline_provider().send(_message(), _recipient(broken))
    assert isinstance(outcome, InvalidToken)
    assert outcome.reason.startswith("invalid_subscription")


def test_topic_keeps_a_valid_key_and_derives_a_stable_one_otherwise() -> None:
    assert topic_for("order-1234_A") == "order-1234_A"
    derived = topic_for("order #1234")
    assert derived == topic_for("order #1234") != topic_for("order #1235")
    assert len(derived) == 32
    assert set(derived) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(topic_for("x" * 33)) == 32


def test_payload_of_3993_bytes_fits_and_one_more_does_not() -> None:
    provider = _offline_provider()
    base = len(
        json.dumps(render_payload(_message(content=Content(body=""))), separators=(",", ":"))
    )
    fits = _message(content=Content(body="x" * (3993 - base)))
    assert len(provider.render(fits, _recipient(FAKE_SUBSCRIPTION)).body) == 4096
    with pytest.raises(PayloadTooLarge):
        provider.render(
            _message(content=Content(body="x" * (3994 - base))), _recipient(FAKE_SUBSCRIPTION)
        )


# --- classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (201, {"location": "https://p/m/1"}, b"", Sent("https://p/m/1")),
        (202, {}, b"", Sent(None)),
        (200, {}, b"", Sent(None)),
        (404, {}, b"", InvalidToken("subscription_expired")),
        (410, {}, b'{"errno":106,"message":"gone"}', InvalidToken("unsubscribed: gone")),
        (413, {}, b"", Rejected("payload_too_large")),
        (429, {"retry-after": "30"}, b"", Retry("throttled", 30.0)),
        (
            400,
            {},
            b'{"reason":"VapidPkHashMismatch"}',
            Rejected("bad_request: VapidPkHashMismatch"),
        ),
        (401, {}, b"", AuthFailed("vapid_rejected")),
        (403, {}, b'{"reason":"BadJwtToken"}', AuthFailed("vapid_rejected: BadJwtToken")),
        (500, {}, b"", Retry("push_service_error 500")),
        (502, {}, b"", Retry("push_service_error 502")),
        (405, {}, b"nope", Rejected("unexpected_status 405: nope")),
    ],
)
def test_responses_map_to_outcomes(
    status: int, headers: dict[str, str], body: bytes, expected: object
) -> None:
    outcome = _offline_provider().classify(HttpResponse(status, headers, body))
    assert outcome == expected


def test_retry_after_as_an_http_date_counts_from_the_clock() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    response = HttpResponse(429, {"retry-after": "Thu, 01 Jan 2026 12:01:30 GMT"})
    assert _offline_provider(clock).classify(response) == Retry("throttled", 90.0)


async def test_authorize_adds_the_vapid_header_for_the_request_origin() -> None:
    request = HttpRequest("POST", "https://127.0.0.1:9/UP?token=t")
    authorized = await _offline_provider().authorize(request)
    name, value = authorized.headers[-1]
    assert name == "Authorization"
    assert value.startswith("vapid t=")
    assert value.endswith(f", k={KEYS.public_key}")


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/x", "https://fcm.googleapis.com"),
        ("https://Push.Example.NET:443/a", "https://push.example.net"),
        ("https://127.0.0.1:8443/UP?token=abc", "https://127.0.0.1:8443"),
        ("https://[::1]:8443/UP?token=abc", "https://[::1]:8443"),
        ("http://ntfy.lan/upAbc?up=1", "http://ntfy.lan"),
    ],
)
def test_vapid_audience_is_the_endpoints_origin_whatever_the_host(
    endpoint: str, origin: str
) -> None:
    assert origin_of(endpoint) == origin
