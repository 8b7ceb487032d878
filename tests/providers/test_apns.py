"""ApnsProvider against the APNs emulator over real HTTP/2 + TLS sockets."""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from clarion.clock import FakeClock
from clarion.emulators.apns import ApnsEmulator
from clarion.emulators.recording import Fault, RecordedRequest
from clarion.model.content import Content, LocalizedText
from clarion.model.message import Message, Priority, Recipient
from clarion.model.outcome import AuthFailed, InvalidToken, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.apns import (
    APNS_REASONS,
    ApnsCertificateCredentials,
    ApnsEnvironment,
    ApnsProvider,
    ApnsTokenCredentials,
    write_client_certificate,
)
from clarion.providers.base import InvalidCredentials, PayloadTooLarge, Transport
from clarion.providers.httpx_transport import HttpxTransport

BUNDLE = "com.example.app"
TEAM = "TEAM000001"
KID = "KEY0000001"
TOKEN = "0f" * 32
DEVICE = Recipient("dev-1", Platform.APNS, TOKEN)

TransportFactory = Callable[..., Transport]


def _transport_factories() -> list[Any]:
    params = [pytest.param(HttpxTransport, id="httpx")]
    try:
        from clarion.providers.curl_transport import CurlTransport
    except ImportError:
        return params
    params.append(pytest.param(CurlTransport, id="curl"))
    return params


@pytest.fixture(params=_transport_factories())
def transport_factory(request: pytest.FixtureRequest) -> TransportFactory:
    factory: TransportFactory = request.param
    return factory


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[ApnsEmulator]:
    async with ApnsEmulator(topics=[BUNDLE], clock=clock, environment="sandbox") as emu:
        yield emu


@pytest.fixture
def credentials(emulator: ApnsEmulator) -> ApnsTokenCredentials:
    return ApnsTokenCredentials(
        key_id=KID,
        team_id=TEAM,
        private_key=emulator.new_signing_key(TEAM, KID),
        bundle_id=BUNDLE,
        environment=ApnsEnvironment.SANDBOX,
    )


@pytest.fixture
async def provider(
    emulator: ApnsEmulator,
    credentials: ApnsTokenCredentials,
    clock: FakeClock,
    transport_factory: TransportFactory,
) -> AsyncIterator[ApnsProvider]:
    transport = transport_factory(ca_file=emulator.ca_file)
    try:
        yield ApnsProvider(credentials, transport, clock=clock, endpoint=emulator.url)
    finally:
        await transport.aclose()


def message(content: Content | None = None, **options: Any) -> Message:
    return Message(content or Content(title="Hi", body="There"), uuid.uuid4(), **options)


def payload_of(record: RecordedRequest) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(record.body)
    return body


def distinct_jwts(emulator: ApnsEmulator) -> set[str]:
    return {r.headers["authorization"] for r in emulator.state.requests}


async def test_alert_arrives_with_every_apns_header_and_payload_key(
    provider: ApnsProvider, emulator: ApnsEmulator, clock: FakeClock
) -> None:
    expires = clock.now() + timedelta(hours=2)
    msg = message(
        Content(
            title="Your order shipped",
            subtitle="Order #1234",
            body="Arrives Thursday",
            image="https://example.com/box.png",
            badge=3,
            sound="default",
            url="myapp://orders/1234",
            data={"order_id": "1234", "aps": "ignored"},
        ),
        expires_at=expires,
        collapse_key="order-1234",
        category="orders",
    )
    outcome = await provider.send(msg, DEVICE)
    record = emulator.state.requests[0]
    assert isinstance(outcome, Sent)
    assert uuid.UUID(str(outcome.provider_id))  # the sandbox apns-unique-id
    assert record.status == 200
    assert record.http_version == "2"
    assert record.path == f"/3/device/{TOKEN}"
    headers = record.headers
    assert headers["authorization"].startswith("bearer ")
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-topic"] == BUNDLE
    assert headers["apns-priority"] == "10"
    assert headers["apns-expiration"] == str(int(expires.timestamp()))
    assert headers["apns-collapse-id"] == "order-1234"
    assert headers["apns-id"] == str(msg.push_id)
    assert payload_of(record) == {
        "order_id": "1234",
        "image": "https://example.com/box.png",
        "url": "myapp://orders/1234",
        "aps": {
            "alert": {
                "title": "Your order shipped",
                "subtitle": "Order #1234",
                "body": "Arrives Thursday",
            },
            "badge": 3,
            "sound": "default",
            "mutable-content": 1,
            "category": "orders",
        },
    }


async def test_silent_content_goes_as_background_at_priority_5(
    provider: ApnsProvider, emulator: ApnsEmulator
) -> None:
    msg = message(Content(data={"sync": True}), priority=Priority.HIGH)
    assert isinstance(await provider.send(msg, DEVICE), Sent)
    record = emulator.state.requests[0]
    assert record.headers["apns-push-type"] == "background"
    assert record.headers["apns-priority"] == "5"
    assert record.headers["apns-expiration"] == "0"
    assert payload_of(record) == {"sync": True, "aps": {"content-available": 1}}


async def test_normal_priority_is_5_and_ttl_sets_the_expiration(
    provider: ApnsProvider, emulator: ApnsEmulator, clock: FakeClock
) -> None:
    assert isinstance(await provider.send(message(priority=Priority.NORMAL, ttl=60), DEVICE), Sent)
    headers = emulator.state.requests[0].headers
    assert headers["apns-priority"] == "5"
    assert headers["apns-expiration"] == str(int(clock.now().timestamp()) + 60)


async def test_override_object_is_deep_merged_and_sets_headers(
    provider: ApnsProvider, emulator: ApnsEmulator
) -> None:
    overrides = {
        "aps": {"thread-id": "orders", "sound": None, "interruption-level": "time-sensitive"},
        "headers": {"apns-priority": "5", "apns-collapse-id": "c1"},
        "extra": {"k": 1},
    }
    msg = message(Content(title="T", sound="ping.caf"), overrides=overrides)
    assert isinstance(await provider.send(msg, DEVICE), Sent)
    record = emulator.state.requests[0]
    assert payload_of(record) == {
        "extra": {"k": 1},
        "aps": {
            "alert": {"title": "T"},
            "thread-id": "orders",
            "interruption-level": "time-sensitive",
        },
    }
    assert (record.headers["apns-priority"], record.headers["apns-collapse-id"]) == ("5", "c1")


@pytest.mark.parametrize(
    ("push_type", "topic"),
    [
        ("voip", BUNDLE + ".voip"),
        ("complication", BUNDLE + ".complication"),
        ("fileprovider", BUNDLE + ".pushkit.fileprovider"),
        ("liveactivity", BUNDLE + ".push-type.liveactivity"),
        ("location", BUNDLE + ".location-query"),
        ("pushtotalk", BUNDLE + ".voip-ptt"),
    ],
)
async def test_push_type_override_picks_the_suffixed_topic(
    provider: ApnsProvider, emulator: ApnsEmulator, push_type: str, topic: str
) -> None:
    msg = message(overrides={"headers": {"apns-push-type": push_type}}, priority=Priority.NORMAL)
    assert isinstance(await provider.send(msg, DEVICE), Sent)
    headers = emulator.state.requests[0].headers
    assert (headers["apns-push-type"], headers["apns-topic"]) == (push_type, topic)
    assert headers["apns-priority"] == ("10" if push_type == "pushtotalk" else "5")


async def test_payload_limit_is_4096_and_5120_for_voip(
    provider: ApnsProvider, emulator: ApnsEmulator
) -> None:
    big = Content(title="T", data={"blob": "x" * 4500})
    with pytest.raises(PayloadTooLarge) as caught:
        provider.render(message(big), DEVICE)
    assert caught.value.limit == 4096
    outcome = await provider.send(message(big), DEVICE)
    assert isinstance(outcome, Rejected) and "payload_too_large" in outcome.reason
    voip = message(big, overrides={"headers": {"apns-push-type": "voip"}})
    assert isinstance(await provider.send(voip, DEVICE), Sent)
    huge = message(
        Content(data={"blob": "x" * 5200}), overrides={"headers": {"apns-push-type": "voip"}}
    )
    assert isinstance(await provider.send(huge, DEVICE), Rejected)
    assert [r.status for r in emulator.state.requests] == [200]


async def test_payload_renders_the_title_localized_for_the_device(
    provider: ApnsProvider, emulator: ApnsEmulator
) -> None:
    content = Content(
        title="Your order shipped",
        body="Arrives Thursday",
        localized={"fr": LocalizedText(title="Commande expédiée")},
    )
    french = Recipient("dev-fr", Platform.APNS, TOKEN, locale="fr-CA")
    assert isinstance(await provider.send(message(content.for_locale(french.locale)), french), Sent)
    alert = payload_of(emulator.state.requests[0])["aps"]["alert"]
    assert alert == {"title": "Commande expédiée", "body": "Arrives Thursday"}
    assert "Commande expédiée".encode() in emulator.state.requests[0].body


async def test_unregistered_token_is_invalid_with_its_timestamp(
    provider: ApnsProvider, emulator: ApnsEmulator
) -> None:
    when = datetime(2025, 12, 24, 18, 30, 0, 125000, tzinfo=UTC)
    emulator.unregister(TOKEN, at=when)
    outcome = await provider.send(message(), DEVICE)
    assert outcome == InvalidToken("Unregistered", since=when)


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        (lambda emu: emu.expire(TOKEN), InvalidToken("ExpiredToken")),
        (lambda emu: emu.bind(TOKEN, "com.example.other"), InvalidToken("DeviceTokenNotForTopic")),
    ],
)
async def test_dead_tokens_are_invalid(
    provider: ApnsProvider,
    emulator: ApnsEmulator,
    prepare: Callable[[ApnsEmulator], None],
    expected: InvalidToken,
) -> None:
    emulator.topics.add("com.example.other")
    prepare(emulator)
    assert await provider.send(message(), DEVICE) == expected


async def test_malformed_device_tokens_are_invalid(
    provider: ApnsProvider, emulator: ApnsEmulator
) -> None:
    short = await provider.send(message(), Recipient("d", Platform.APNS, "abcd"))
    assert short == InvalidToken("BadDeviceToken")
    not_hex = await provider.send(message(), Recipient("d", Platform.APNS, "../../_emulator"))
    assert isinstance(not_hex, InvalidToken) and not_hex.reason.startswith("BadDeviceToken")
    assert len(emulator.state.requests) == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(429, {"reason": "TooManyRequests"}), Retry("TooManyRequests")),
        (
            Fault(429, {"reason": "TooManyRequests"}, {"retry-after": "30"}),
            Retry("TooManyRequests", 30.0),
        ),
        (Fault(500, {"reason": "InternalServerError"}), Retry("InternalServerError")),
        (Fault(503, {"reason": "ServiceUnavailable"}), Retry("ServiceUnavailable")),
        (Fault(503, {"reason": "Shutdown"}), Retry("Shutdown")),
        (Fault(503, "<html>busy</html>"), Retry("HTTP 503")),
        (
            Fault(429, {"reason": "TooManyProviderTokenUpdates"}),
            Retry("TooManyProviderTokenUpdates"),
        ),
        (Fault(403, {"reason": "InvalidProviderToken"}), AuthFailed("InvalidProviderToken")),
        (Fault(403, {"reason": "MissingProviderToken"}), AuthFailed("MissingProviderToken")),
        (Fault(403, {"reason": "BadCertificate"}), AuthFailed("BadCertificate")),
        (
            Fault(403, {"reason": "BadCertificateEnvironment"}),
            AuthFailed("BadCertificateEnvironment"),
        ),
        (Fault(403, {"reason": "UnrelatedKeyIdInToken"}), AuthFailed("UnrelatedKeyIdInToken")),
        (Fault(400, {"reason": "BadDeviceToken"}), InvalidToken("BadDeviceToken")),
        (Fault(410, {"reason": "ExpiredToken"}), InvalidToken("ExpiredToken")),
        (Fault(400, {"reason": "BadTopic"}), Rejected("BadTopic")),
        (Fault(400, {"reason": "TopicDisallowed"}), Rejected("TopicDisallowed")),
        (Fault(403, {"reason": "Forbidden"}), Rejected("Forbidden")),
        (Fault(413, {"reason": "PayloadTooLarge"}), Rejected("PayloadTooLarge")),
        (Fault(400, {"reason": "SomethingNew"}), Rejected("SomethingNew")),
    ],
)
async def test_each_apns_error_maps_to_its_outcome(
    provider: ApnsProvider, emulator: ApnsEmulator, fault: Fault, expected: object
) -> None:
    emulator.state.faults.set(TOKEN, fault)
    assert await provider.send(message(), DEVICE) == expected


def test_the_table_knows_every_reason_apple_documents() -> None:
    documented = [
        "BadCollapseId",
        "BadDeviceToken",
        "BadExpirationDate",
        "BadMessageId",
        "BadPriority",
        "BadTopic",
        "DeviceTokenNotForTopic",
        "DuplicateHeaders",
        "IdleTimeout",
        "InvalidPushType",
        "MissingDeviceToken",
        "MissingTopic",
        "PayloadEmpty",
        "TopicDisallowed",
        "BadCertificate",
        "BadCertificateEnvironment",
        "ExpiredProviderToken",
        "Forbidden",
        "InvalidProviderToken",
        "MissingProviderToken",
        "UnrelatedKeyIdInToken",
        "BadEnvironmentKeyIdInToken",
        "BadPath",
        "MethodNotAllowed",
        "ExpiredToken",
        "Unregistered",
        "PayloadTooLarge",
        "TooManyProviderTokenUpdates",
        "TooManyRequests",
        "InternalServerError",
        "ServiceUnavailable",
        "Shutdown",
    ]
    assert set(APNS_REASONS) == set(documented)


async def test_jwt_is_reused_for_50_minutes_then_refreshed(
    provider: ApnsProvider, emulator: ApnsEmulator, clock: FakeClock
) -> None:
    outcomes = await asyncio.gather(*(provider.send(message(), DEVICE) for _ in range(30)))
    assert all(isinstance(o, Sent) for o in outcomes)
    clock.advance(49 * 60)
    assert isinstance(await provider.send(message(), DEVICE), Sent)
    assert len(distinct_jwts(emulator)) == 1
    clock.advance(60)
    outcomes = await asyncio.gather(*(provider.send(message(), DEVICE) for _ in range(10)))
    assert all(isinstance(o, Sent) for o in outcomes)
    assert len(distinct_jwts(emulator)) == 2
    assert {r.status for r in emulator.state.requests} == {200}
    assert provider.signer is not None and provider.signer.signed_count == 2


async def test_our_jwt_verifies_with_pyjwt_against_the_public_key(
    provider: ApnsProvider, credentials: ApnsTokenCredentials, clock: FakeClock
) -> None:
    request = await provider.authorize(provider.render(message(), DEVICE))
    scheme, token = dict(request.headers)["authorization"].split(" ")
    public = load_pem_private_key(credentials.private_key.encode(), None).public_key()
    claims = jwt.decode(token, public, algorithms=["ES256"], options={"verify_iat": False})
    assert scheme == "bearer"
    assert claims == {"iss": TEAM, "iat": int(clock.now().timestamp())}
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KID, "typ": "JWT"}


async def test_expired_provider_token_makes_the_next_push_carry_a_new_jwt(
    provider: ApnsProvider, emulator: ApnsEmulator, clock: FakeClock
) -> None:
    assert isinstance(await provider.send(message(), DEVICE), Sent)
    clock.advance(25 * 60)
    emulator.state.faults.set(TOKEN, Fault(403, {"reason": "ExpiredProviderToken"}, times=1))
    assert await provider.send(message(), DEVICE) == Retry("ExpiredProviderToken")
    assert isinstance(await provider.send(message(), DEVICE), Sent)
    assert len(distinct_jwts(emulator)) == 2


async def test_a_burst_of_expired_answers_never_provokes_too_many_token_updates(
    provider: ApnsProvider, emulator: ApnsEmulator, clock: FakeClock
) -> None:
    assert isinstance(await provider.send(message(), DEVICE), Sent)
    clock.advance(5 * 60)
    emulator.state.faults.set(TOKEN, Fault(403, {"reason": "ExpiredProviderToken"}, times=5))
    outcomes = await asyncio.gather(*(provider.send(message(), DEVICE) for _ in range(5)))
    assert outcomes == [Retry("ExpiredProviderToken")] * 5
    assert isinstance(await provider.send(message(), DEVICE), Sent)
    clock.advance(20 * 60)
    for _ in range(3):
        emulator.state.faults.set(TOKEN, Fault(403, {"reason": "ExpiredProviderToken"}, times=1))
        await provider.send(message(), DEVICE)
        assert isinstance(await provider.send(message(), DEVICE), Sent)
    assert len(distinct_jwts(emulator)) == 2
    assert all(r.status != 429 for r in emulator.state.requests)


async def test_a_key_apns_does_not_know_is_an_auth_failure(
    emulator: ApnsEmulator, clock: FakeClock, transport_factory: TransportFactory
) -> None:
    stranger = ApnsTokenCredentials(KID, TEAM, ApnsEmulator().new_signing_key(), BUNDLE)
    transport = transport_factory(ca_file=emulator.ca_file)
    try:
        provider = ApnsProvider(stranger, transport, clock=clock, endpoint=emulator.url)
        assert await provider.send(message(), DEVICE) == AuthFailed("InvalidProviderToken")
    finally:
        await transport.aclose()


def test_an_unreadable_key_is_invalid_credentials() -> None:
    broken = ApnsTokenCredentials(KID, TEAM, "-----BEGIN PRIVATE KEY-----\nnope", BUNDLE)
    with pytest.raises(InvalidCredentials):
        ApnsProvider(broken, HttpxTransport())
    assert "nope" not in repr(broken)


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"collapse_key": "k" * 65}, "collapse id"),
        ({"overrides": {"headers": {"apns-push-type": "mdm"}}}, "apns-topic"),
        ({"overrides": {"headers": {"authorization": "x"}}}, "cannot set"),
        ({"overrides": {"headers": {"apns-push-type": "banner"}}}, "push-type"),
        ({"overrides": {"headers": {"apns-priority": "7"}}}, "priority"),
    ],
)
async def test_messages_apns_would_refuse_are_rejected_before_sending(
    provider: ApnsProvider, emulator: ApnsEmulator, options: dict[str, Any], why: str
) -> None:
    outcome = await provider.send(message(**options), DEVICE)
    assert isinstance(outcome, Rejected) and why in outcome.reason
    assert emulator.state.requests == []


def test_hosts_follow_the_environment() -> None:
    pem = ApnsEmulator().new_signing_key()
    for environment, host in [
        (ApnsEnvironment.PRODUCTION, "https://api.push.apple.com/3/device/"),
        (ApnsEnvironment.SANDBOX, "https://api.sandbox.push.apple.com/3/device/"),
    ]:
        credentials = ApnsTokenCredentials(KID, TEAM, pem, BUNDLE, environment)
        request = ApnsProvider(credentials, HttpxTransport()).render(message(), DEVICE)
        assert request.url == host + TOKEN


async def test_certificate_auth_sends_through_the_transport_client_certificate(
    transport_factory: TransportFactory, tmp_path: Path
) -> None:
    async with ApnsEmulator(topics=[BUNDLE], certificate_auth=True) as emulator:
        cert, key = emulator.issue_certificate(BUNDLE)
        credentials = ApnsCertificateCredentials(cert, key, BUNDLE, ApnsEnvironment.PRODUCTION)
        cert_path, key_path = write_client_certificate(credentials, tmp_path / "apns")
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "apns").stat().st_mode) == 0o700
        transport = transport_factory(ca_file=emulator.ca_file, client_cert=(cert_path, key_path))
        anonymous = transport_factory(ca_file=emulator.ca_file)
        try:
            provider = ApnsProvider(credentials, transport, endpoint=emulator.url)
            assert isinstance(await provider.send(message(), DEVICE), Sent)
            refused = ApnsProvider(credentials, anonymous, endpoint=emulator.url)
            without_certificate = await refused.send(message(), DEVICE)
            location = message(overrides={"headers": {"apns-push-type": "location"}})
            token_only = await provider.send(location, DEVICE)
        finally:
            await transport.aclose()
            await anonymous.aclose()
    assert isinstance(without_certificate, Retry) and "transport" in without_certificate.reason
    assert isinstance(token_only, Rejected)
    assert len(emulator.state.requests) == 1
    assert "authorization" not in emulator.state.requests[0].headers


async def test_cold_burst_respects_the_one_stream_rule_of_a_new_connection(
    clock: FakeClock, transport_factory: TransportFactory
) -> None:
    async with ApnsEmulator(topics=[BUNDLE], clock=clock, raw_h2=True) as emulator:
        pem = emulator.new_signing_key(TEAM, KID)
        transport = transport_factory(ca_file=emulator.ca_file)
        try:
            provider = ApnsProvider(
                ApnsTokenCredentials(KID, TEAM, pem, BUNDLE),
                transport,
                clock=clock,
                endpoint=emulator.url,
            )
            outcomes = await asyncio.gather(*(provider.send(message(), DEVICE) for _ in range(100)))
        finally:
            await transport.aclose()
        refused = emulator.server.refused_streams
        priority_signals = emulator.server.priority_signals
    assert [type(o) for o in outcomes] == [Sent] * 100
    assert refused == 0
    assert priority_signals == 0
    assert len(distinct_jwts(emulator)) == 1


async def test_goaway_costs_at_most_a_retry_and_the_next_push_reconnects(
    clock: FakeClock, transport_factory: TransportFactory
) -> None:
    async with ApnsEmulator(topics=[BUNDLE], clock=clock, raw_h2=True) as emulator:
        pem = emulator.new_signing_key(TEAM, KID)
        transport = transport_factory(ca_file=emulator.ca_file)
        try:
            provider = ApnsProvider(
                ApnsTokenCredentials(KID, TEAM, pem, BUNDLE),
                transport,
                clock=clock,
                endpoint=emulator.url,
            )
            assert isinstance(await provider.send(message(), DEVICE), Sent)
            emulator.goaway("Shutdown")
            await asyncio.sleep(0.05)
            after = await provider.send(message(), DEVICE)
            if isinstance(after, Retry):
                after = await provider.send(message(), DEVICE)
        finally:
            await transport.aclose()
    assert isinstance(after, Sent)
