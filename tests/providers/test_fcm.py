"""FCM HTTP v1 provider against the FCM emulator, over real sockets."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clarion.clock import FakeClock
from clarion.emulators.fcm import FcmEmulator, fcm_error_body
from clarion.emulators.recording import Fault
from clarion.model.content import Content, LocalizedText
from clarion.model.message import Message, Priority, Recipient
from clarion.model.outcome import AuthFailed, InvalidToken, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import InvalidCredentials, PayloadTooLarge, Transport
from clarion.providers.fcm import FcmCredentials, FcmProvider
from clarion.providers.httpx_transport import HttpxTransport
from clarion.providers.oauth import ServiceAccount

TOKEN = "fcm-token-0123456789:APA91b"
TRANSPORTS = ["httpx"]
if importlib.util.find_spec("clarion.providers.curl_transport") is not None:
    TRANSPORTS.append("curl")
ONE_TRANSPORT = pytest.mark.parametrize("transport", ["httpx"], indirect=True)
"""For tables of error answers: the mapping, not the transport, is under test."""


def make_transport(kind: str, ca_file: Path | None = None) -> Transport:
    if kind == "curl":
        from clarion.providers.curl_transport import CurlTransport

        return CurlTransport(ca_file=ca_file)  # type: ignore[no-any-return]
    return HttpxTransport(ca_file=ca_file)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[FcmEmulator]:
    async with FcmEmulator(clock=clock) as emu:
        yield emu


@pytest.fixture(params=TRANSPORTS)
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    made = make_transport(request.param)
    yield made
    await made.aclose()


@pytest.fixture
def provider(emulator: FcmEmulator, transport: Transport, clock: FakeClock) -> FcmProvider:
    account = ServiceAccount.from_json(json.dumps(emulator.service_account("demo-project")))
    credentials = FcmCredentials(account, endpoint=emulator.url)
    return FcmProvider(transport, credentials, clock=clock)


def message(content: Content | None = None, **options: Any) -> Message:
    return Message(
        content=content or Content(title="Your order shipped", body="Arrives Thursday"),
        push_id=uuid.uuid4(),
        **options,
    )


def recipient(token: str = TOKEN, locale: str | None = None) -> Recipient:
    return Recipient(device_id="d1", platform=Platform.FCM, token=token, locale=locale)


def other_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def sent_message(emulator: FcmEmulator, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(emulator.state.requests[index].body)
    return body["message"]  # type: ignore[no-any-return]


async def test_push_is_sent_with_the_message_name(
    provider: FcmProvider, emulator: FcmEmulator, clock: FakeClock
) -> None:
    push = message(
        Content(title="Shipped", body="Thursday", image="https://e.test/box.png", sound="default"),
        expires_at=clock.now() + timedelta(seconds=600),
        collapse_key="order-1234",
        priority=Priority.NORMAL,
    )
    outcome = await provider.send(push, recipient())
    assert isinstance(outcome, Sent)
    assert outcome.provider_id is not None
    assert outcome.provider_id.startswith("projects/demo-project/messages/0:")
    sent = sent_message(emulator)
    assert sent["token"] == TOKEN
    assert sent["notification"] == {
        "title": "Shipped",
        "body": "Thursday",
        "image": "https://e.test/box.png",
    }
    assert sent["android"]["priority"] == "NORMAL"
    assert sent["android"]["ttl"] == "600s"
    assert sent["android"]["collapse_key"] == "order-1234"
    assert sent["android"]["notification"] == {"sound": "default", "tag": "order-1234"}
    assert sent["apns"]["headers"]["apns-priority"] == "5"
    assert sent["apns"]["headers"]["apns-collapse-id"] == "order-1234"
    assert sent["apns"]["headers"]["apns-expiration"] == str(int(push.expires_at.timestamp()))  # type: ignore[union-attr]
    assert sent["apns"]["payload"]["aps"]["mutable-content"] == 1
    assert sent["webpush"]["headers"] == {"Urgency": "normal", "TTL": "600", "Topic": "order-1234"}
    assert emulator.state.requests[-1].headers["authorization"].startswith("Bearer ")


async def test_data_values_are_stringified(provider: FcmProvider, emulator: FcmEmulator) -> None:
    content = Content(data={"order": 1234, "paid": True, "items": [{"sku": "a"}], "note": "hi"})
    assert isinstance(await provider.send(message(content), recipient()), Sent)
    assert sent_message(emulator)["data"] == {
        "order": "1234",
        "paid": "true",
        "items": '[{"sku":"a"}]',
        "note": "hi",
    }


async def test_silent_push_has_no_notification_and_low_apns_priority(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    assert isinstance(await provider.send(message(Content(data={"sync": 1})), recipient()), Sent)
    sent = sent_message(emulator)
    assert "notification" not in sent
    assert sent["apns"]["headers"] == {"apns-priority": "5", "apns-push-type": "background"}
    assert sent["apns"]["payload"]["aps"] == {"content-available": 1}


async def test_localized_title_is_rendered(provider: FcmProvider, emulator: FcmEmulator) -> None:
    content = Content(
        title="Your order shipped",
        body="Arrives Thursday",
        localized={"fr": LocalizedText(title="Commande expédiée")},
    )
    device = recipient(locale="fr-CA")
    assert isinstance(await provider.send(message(content.for_locale(device.locale)), device), Sent)
    assert sent_message(emulator)["notification"]["title"] == "Commande expédiée"
    assert sent_message(emulator)["notification"]["body"] == "Arrives Thursday"


async def test_fcm_override_is_deep_merged_into_the_message(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    overrides = {
        "android": {"notification": {"channel_id": "orders", "click_action": "OPEN_ORDER"}},
        "apns": {"payload": {"aps": {"category": "ORDER"}}},
        "webpush": None,
        "fcm_options": {"analytics_label": "orders"},
    }
    assert isinstance(await provider.send(message(overrides=overrides), recipient()), Sent)
    sent = sent_message(emulator)
    assert sent["android"]["notification"]["channel_id"] == "orders"
    assert sent["android"]["notification"]["click_action"] == "OPEN_ORDER"
    assert sent["android"]["priority"] == "HIGH"  # kept from the common content
    assert sent["apns"]["payload"]["aps"]["category"] == "ORDER"
    assert "webpush" not in sent
    assert sent["fcm_options"] == {"analytics_label": "orders"}


async def test_oversized_payload_is_refused_before_sending(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    big = message(Content(title="t", data={"blob": "x" * 4000}))
    with pytest.raises(PayloadTooLarge) as raised:
        provider.render(big, recipient())
    assert raised.value.limit == 4096
    outcome = await provider.send(big, recipient())
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("payload_too_large")
    assert emulator.state.requests == []


async def test_emulator_enforces_the_size_limit_too(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    # An override the provider's check does not see past: the emulator measures independently.
    request = provider.render(message(Content(title="t")), recipient())
    body = json.loads(request.body)
    body["message"]["data"] = {"blob": "x" * 4100}
    forged = type(request)(request.method, request.url, request.headers, json.dumps(body).encode())
    response = await provider.transport.request(await provider.authorize(forged))
    outcome = provider.classify(response)
    assert isinstance(outcome, Rejected)
    assert "too big" in outcome.reason


async def test_unregistered_token_is_invalid(provider: FcmProvider, emulator: FcmEmulator) -> None:
    emulator.unregister(TOKEN)
    outcome = await provider.send(message(), recipient())
    assert isinstance(outcome, InvalidToken)
    assert outcome.reason.startswith("UNREGISTERED")


async def test_malformed_token_is_invalid(provider: FcmProvider) -> None:
    outcome = await provider.send(message(), recipient(token="not a token!"))
    assert isinstance(outcome, InvalidToken)
    assert "registration token" in outcome.reason


async def test_sender_id_mismatch_drops_the_token(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    emulator.register(TOKEN, "another-project")
    outcome = await provider.send(message(), recipient())
    assert isinstance(outcome, InvalidToken)
    assert outcome.reason.startswith("SENDER_ID_MISMATCH")


@ONE_TRANSPORT
@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"data": {"from": "me"}}, "Invalid data payload key: from"),
        ({"data": {"google.sent_time": "1"}}, "Invalid data payload key"),
        ({"android": {"ttl": "10"}}, "message.android.ttl"),
        ({"android": {"priority": "URGENT"}}, "message.android.priority"),
        ({"topic": "news"}, "Exactly one of token, topic or condition"),
    ],
)
async def test_invalid_message_is_rejected_not_retried(
    provider: FcmProvider, override: dict[str, Any], fragment: str
) -> None:
    outcome = await provider.send(message(overrides=override), recipient())
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("INVALID_ARGUMENT")
    assert fragment in outcome.reason


@ONE_TRANSPORT
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(status=429, headers={"retry-after": "7"}), Retry("QUOTA_EXCEEDED", 7.0)),
        (Fault(status=429), Retry("QUOTA_EXCEEDED", 60.0)),
        (Fault(status=503, headers={"retry-after": "30"}), Retry("UNAVAILABLE", 30.0)),
        (Fault(status=500), Retry("INTERNAL", None)),
        (Fault(status=502, body={"error": "bad gateway"}), Retry("502", None)),
        (
            Fault(status=401, body=fcm_error_body(401, "THIRD_PARTY_AUTH_ERROR", "APNs key")),
            AuthFailed("THIRD_PARTY_AUTH_ERROR"),
        ),
        (
            Fault(status=403, body=fcm_error_body(403, None, "API not enabled")),
            AuthFailed("PERMISSION_DENIED"),
        ),
    ],
)
async def test_service_errors_map_to_outcomes(
    provider: FcmProvider, emulator: FcmEmulator, fault: Fault, expected: Retry | AuthFailed
) -> None:
    emulator.state.faults.set(TOKEN, fault)
    outcome = await provider.send(message(), recipient())
    assert type(outcome) is type(expected)
    assert outcome.reason.startswith(expected.reason)
    if isinstance(expected, Retry):
        assert isinstance(outcome, Retry)
        assert outcome.after == expected.after


async def test_retry_after_as_http_date_is_honoured(
    provider: FcmProvider, emulator: FcmEmulator, clock: FakeClock
) -> None:
    when = format_datetime(clock.now() + timedelta(seconds=90), usegmt=True)
    emulator.state.faults.set(TOKEN, Fault(status=503, headers={"retry-after": when}))
    outcome = await provider.send(message(), recipient())
    assert outcome == Retry("UNAVAILABLE", 90.0)


async def test_access_token_is_cached_across_sends_and_refreshed_on_expiry(
    provider: FcmProvider, emulator: FcmEmulator, clock: FakeClock
) -> None:
    for _ in range(20):
        assert isinstance(await provider.send(message(), recipient()), Sent)
    assert emulator.issuer.token_requests == 1
    clock.advance(3599 - 300 - 1)
    assert isinstance(await provider.send(message(), recipient()), Sent)
    assert emulator.issuer.token_requests == 1
    clock.advance(2)  # inside the 300 s refresh margin
    assert isinstance(await provider.send(message(), recipient()), Sent)
    assert emulator.issuer.token_requests == 2
    clock.advance(3600)  # long past expiry
    assert isinstance(await provider.send(message(), recipient()), Sent)
    assert emulator.issuer.token_requests == 3


async def test_fifty_concurrent_sends_fetch_one_token(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    outcomes = await asyncio.gather(
        *(provider.send(message(), recipient(f"{TOKEN}-{i}")) for i in range(50))
    )
    assert all(isinstance(o, Sent) for o in outcomes)
    assert emulator.issuer.token_requests == 1
    assert len(emulator.state.requests) == 50


async def test_revoked_access_token_is_refreshed_and_the_push_sent_once_more(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    assert isinstance(await provider.send(message(), recipient()), Sent)
    emulator.issuer.expire_all()
    assert isinstance(await provider.send(message(), recipient()), Sent)
    assert [r.status for r in emulator.state.requests] == [200, 401, 200]
    assert emulator.issuer.token_requests == 2


async def test_fresh_token_refused_again_is_auth_failed(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    refused = fcm_error_body(401, None, "Request had invalid authentication credentials.")
    emulator.state.faults.set(TOKEN, Fault(status=401, body=refused))
    outcome = await provider.send(message(), recipient())
    assert isinstance(outcome, AuthFailed)
    assert len(emulator.state.requests) == 2
    assert emulator.issuer.token_requests == 2


async def test_service_account_of_another_project_is_auth_failed(
    emulator: FcmEmulator, transport: Transport, clock: FakeClock
) -> None:
    data = emulator.service_account("demo-project")
    data["project_id"] = "someone-elses-project"
    credentials = FcmCredentials(ServiceAccount.from_json(data), endpoint=emulator.url)
    outcome = await FcmProvider(transport, credentials, clock=clock).send(message(), recipient())
    assert isinstance(outcome, AuthFailed)
    assert "cloudmessaging.messages.create" in outcome.reason


async def test_unknown_service_account_key_is_auth_failed(
    emulator: FcmEmulator, transport: Transport, clock: FakeClock
) -> None:
    data = emulator.service_account("demo-project")
    data["private_key"] = other_private_key()
    credentials = FcmCredentials(ServiceAccount.from_json(data), endpoint=emulator.url)
    outcome = await FcmProvider(transport, credentials, clock=clock).send(message(), recipient())
    assert isinstance(outcome, AuthFailed)
    assert "invalid_grant" in outcome.reason
    assert emulator.state.requests == []


async def test_bad_service_account_json_names_the_missing_field(emulator: FcmEmulator) -> None:
    data = emulator.service_account("demo-project")
    del data["client_email"]
    with pytest.raises(InvalidCredentials, match="'client_email'"):
        ServiceAccount.from_json(json.dumps(data))


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_push_goes_over_http2_with_tls(clock: FakeClock, kind: str) -> None:
    async with FcmEmulator(clock=clock, tls=True) as emu:
        transport = make_transport(kind, emu.ca_file)
        try:
            account = ServiceAccount.from_json(emu.service_account("demo-project"))
            provider = FcmProvider(transport, FcmCredentials(account, emu.url), clock=clock)
            assert isinstance(await provider.send(message(), recipient()), Sent)
        finally:
            await transport.aclose()
    assert emu.state.requests[-1].http_version == "2"


async def test_credentials_from_the_api_body(emulator: FcmEmulator) -> None:
    account = emulator.service_account("demo-project")
    credentials = FcmCredentials.from_config({"service_account": account})
    assert credentials.send_url == (
        "https://fcm.googleapis.com/v1/projects/demo-project/messages:send"
    )
    with pytest.raises(InvalidCredentials, match="'service_account'"):
        FcmCredentials.from_config({"endpoint": emulator.url})


async def test_content_url_becomes_data_and_the_web_link(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    content = Content(title="Order", url="https://shop.test/o/1")
    assert isinstance(await provider.send(message(content), recipient()), Sent)
    sent = sent_message(emulator)
    assert sent["data"] == {"url": "https://shop.test/o/1"}
    assert sent["webpush"]["fcm_options"] == {"link": "https://shop.test/o/1"}


async def test_validate_only_checks_without_delivering(
    provider: FcmProvider, emulator: FcmEmulator
) -> None:
    request = provider.render(message(), recipient())
    body = json.loads(request.body)
    body["validate_only"] = True
    forged = type(request)(request.method, request.url, request.headers, json.dumps(body).encode())
    response = await provider.transport.request(await provider.authorize(forged))
    assert provider.classify(response) == Sent("projects/demo-project/messages/fake_message_id")
