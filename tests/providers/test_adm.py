"""AdmProvider against the ADM emulator over real TLS sockets."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from clarion.clock import FakeClock
from clarion.emulators.adm import AdmEmulator
from clarion.emulators.recording import Fault, RecordedRequest
from clarion.model.content import Action, Content, LocalizedText
from clarion.model.message import Message, Recipient
from clarion.model.outcome import (
    AuthFailed,
    InvalidToken,
    Outcome,
    Rejected,
    Retry,
    Sent,
    TokenReplaced,
)
from clarion.model.platform import Platform
from clarion.providers.adm import AdmCredentials, AdmProvider, data_md5
from clarion.providers.base import HttpResponse, PayloadTooLarge, Transport
from clarion.providers.httpx_transport import HttpxTransport

TRANSPORTS = ["httpx"]
if importlib.util.find_spec("clarion.providers.curl_transport") is not None:
    TRANSPORTS.append("curl")


def make_transport(kind: str, emu: AdmEmulator) -> Transport:
    if kind == "curl":
        from clarion.providers.curl_transport import CurlTransport

        return CurlTransport(ca_file=emu.ca_file)
    return HttpxTransport(ca_file=emu.ca_file)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[AdmEmulator]:
    async with AdmEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture(params=TRANSPORTS)
async def transport(request: pytest.FixtureRequest, emu: AdmEmulator) -> AsyncIterator[Transport]:
    transport = make_transport(request.param, emu)
    yield transport
    await transport.aclose()


@pytest.fixture
def adm(transport: Transport, emu: AdmEmulator, clock: FakeClock) -> AdmProvider:
    credentials = AdmCredentials(
        emu.client_id, emu.client_secret, token_url=emu.token_url, endpoint=emu.url
    )
    return AdmProvider(transport, credentials, clock=clock)


def message(content: Content, **options: Any) -> Message:
    return Message(content=content, push_id=uuid.uuid4(), **options)


def to(registration_id: str) -> Recipient:
    return Recipient(device_id="fire-1", platform=Platform.ADM, token=registration_id)


def last(emu: AdmEmulator) -> RecordedRequest:
    return emu.state.requests[-1]


def body(request: RecordedRequest) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(request.body)
    return value


async def test_push_carries_content_as_string_data_with_amazon_headers(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    reg = emu.register()
    content = Content(
        title="Your order shipped",
        body="Arrives Thursday",
        badge=1,
        url="myapp://orders/1234",
        data={"order_id": "1234", "items": [1, 2], "gift": True},
        actions=(Action("track", "Track", "myapp://track"),),
    )

    outcome = await adm.send(message(content, ttl=86400, collapse_key="order-1234"), to(reg))

    assert outcome == Sent(reg)
    request = last(emu)
    assert request.status == 200
    assert request.path == f"/messaging/registrations/{reg}/messages"
    assert request.headers["x-amzn-type-version"] == "com.amazon.device.messaging.ADMMessage@1.0"
    assert request.headers["x-amzn-accept-type"] == "com.amazon.device.messaging.ADMSendResult@1.0"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"].startswith("Bearer ")
    sent = body(request)
    assert sent["data"] == {
        "title": "Your order shipped",
        "body": "Arrives Thursday",
        "badge": "1",
        "url": "myapp://orders/1234",
        "order_id": "1234",
        "items": "[1,2]",
        "gift": "true",
        "actions": '[{"id":"track","title":"Track","url":"myapp://track"}]',
    }
    assert sent["consolidationKey"] == "order-1234"
    assert sent["expiresAfter"] == 86400
    assert sent["md5"] == data_md5(sent["data"])


def test_md5_matches_amazons_algorithm_on_known_vectors() -> None:
    # Vectors from a third-party ADM client (pigeon) and Amazon's sample calculator.
    assert data_md5({"message": "your message"}) == "qzF+HgArKZjJrpfcTbiFxg=="
    assert data_md5({}) == "1B2M2Y8AsgTpgAmY7PhCfg=="


async def test_localized_title_is_rendered_for_the_device_locale(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    content = Content(
        title="Your order shipped",
        localized={"de": LocalizedText(title="Bestellung versandt")},
    )
    await adm.send(message(content.for_locale("de-AT")), to(emu.register()))

    assert body(last(emu))["data"]["title"] == "Bestellung versandt"


async def test_adm_override_is_merged_into_the_message(adm: AdmProvider, emu: AdmEmulator) -> None:
    overrides = {"data": {"channel": "promo"}, "expiresAfter": 120, "consolidationKey": "k"}

    outcome = await adm.send(
        message(Content(title="t"), collapse_key="x", overrides=overrides), to(emu.register())
    )

    assert isinstance(outcome, Sent)
    sent = body(last(emu))
    assert sent["data"] == {"title": "t", "channel": "promo"}
    assert (sent["expiresAfter"], sent["consolidationKey"]) == (120, "k")
    assert sent["md5"] == data_md5(sent["data"])


async def test_expiry_is_the_remaining_lifetime_within_adms_range(
    adm: AdmProvider, emu: AdmEmulator, clock: FakeClock
) -> None:
    reg = emu.register()
    expires_at = clock.now() + timedelta(hours=1)
    clock.advance(600)
    await adm.send(message(Content(title="t"), expires_at=expires_at), to(reg))
    await adm.send(message(Content(title="t"), ttl=0), to(reg))
    await adm.send(message(Content(title="t"), ttl=365 * 86400), to(reg))

    assert [body(r)["expiresAfter"] for r in emu.state.requests] == [3000, 60, 2678400]
    assert all(r.status == 200 for r in emu.state.requests)


async def test_replaced_registration_comes_back_as_token_replaced(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    old = emu.register()
    new = emu.replace(old)

    outcome = await adm.send(message(Content(title="t")), to(old))

    assert outcome == TokenReplaced(new)


async def test_unregistered_app_instance_is_an_invalid_token(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    reg = emu.register()
    emu.unregister(reg)

    outcome = await adm.send(message(Content(title="t")), to(reg))

    assert outcome == InvalidToken("Unregistered (400)")


async def test_unknown_registration_id_is_an_invalid_token(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    outcome = await adm.send(message(Content(title="t")), to("amzn1.adm-registration.v3.nope"))

    assert outcome == InvalidToken("InvalidRegistrationId (400)")


async def test_wrong_checksum_is_rejected_by_adm(adm: AdmProvider, emu: AdmEmulator) -> None:
    outcome = await adm.send(
        message(Content(title="t"), overrides={"md5": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        to(emu.register()),
    )

    assert outcome == Rejected("InvalidChecksum (400)")


async def test_checksum_can_be_left_out(adm: AdmProvider, emu: AdmEmulator) -> None:
    outcome = await adm.send(
        message(Content(title="t"), overrides={"md5": False}), to(emu.register())
    )

    assert isinstance(outcome, Sent)
    assert "md5" not in body(last(emu))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"expiresAfter": 10}, "InvalidExpiration"),
        ({"consolidationKey": 5}, "InvalidConsolidationKey"),
        ({"priority": "urgent"}, "InvalidData"),
    ],
)
async def test_invalid_fields_are_rejected_by_adm(
    adm: AdmProvider, emu: AdmEmulator, overrides: dict[str, Any], reason: str
) -> None:
    outcome = await adm.send(message(Content(title="t"), overrides=overrides), to(emu.register()))

    assert outcome == Rejected(f"{reason} (400)")


async def test_payload_over_6_kb_is_rejected_before_sending(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    big = Content(title="t", body="x" * 6200)
    reg = emu.register()
    with pytest.raises(PayloadTooLarge) as raised:
        adm.render(message(big), to(reg))

    outcome = await adm.send(message(big), to(reg))

    assert raised.value.limit == 6144
    assert isinstance(outcome, Rejected) and "payload_too_large" in outcome.reason
    assert emu.state.requests == []


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            Fault(429, {"reason": "MaxRateExceeded"}, {"retry-after": "5"}, times=1),
            Retry("MaxRateExceeded (429)", 5.0),
        ),
        (Fault(500, {}, {"retry-after": "2"}, times=1), Retry("server_error (500)", 2.0)),
        (Fault(503, None, times=1), Retry("unavailable (503)", None)),
        (Fault(413, {"reason": "MessageTooLarge"}, times=1), Rejected("MessageTooLarge (413)")),
        (Fault(410, {"reason": "Unregistered"}, times=1), InvalidToken("Unregistered (410)")),
        (Fault(400, {"reason": "InvalidData"}, times=1), Rejected("InvalidData (400)")),
        (Fault(403, {}, times=1), AuthFailed("forbidden (403)")),
    ],
)
async def test_service_errors_map_to_outcomes(
    adm: AdmProvider, emu: AdmEmulator, fault: Fault, expected: Outcome
) -> None:
    reg = emu.register()
    emu.state.faults.set(reg, fault)

    outcome = await adm.send(message(Content(title="t")), to(reg))

    assert outcome == expected


async def test_token_is_cached_and_refetched_when_it_expires(
    adm: AdmProvider, emu: AdmEmulator, clock: FakeClock
) -> None:
    reg = emu.register()
    for _ in range(3):
        assert isinstance(await adm.send(message(Content(title="t")), to(reg)), Sent)
    assert emu.issuer.token_requests == 1

    clock.advance(3600 - 30)
    assert isinstance(await adm.send(message(Content(title="t")), to(reg)), Sent)

    assert emu.issuer.token_requests == 2


async def test_expired_access_token_is_refreshed_and_the_push_retried_once(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    reg = emu.register()
    await adm.send(message(Content(title="t")), to(reg))
    emu.issuer.expire_all()

    outcome = await adm.send(message(Content(title="t")), to(reg))

    assert isinstance(outcome, Sent)
    assert [r.status for r in emu.state.requests] == [200, 401, 200]
    assert emu.issuer.token_requests == 2


async def test_classify_alone_drops_the_token_on_access_token_expired(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    first = await adm.tokens.token()

    outcome = adm.classify(HttpResponse(401, {}, b'{"reason":"AccessTokenExpired"}'))

    assert outcome == Retry("AccessTokenExpired (401)", None)
    assert await adm.tokens.token() != first


async def test_wrong_client_secret_is_an_auth_failure(
    transport: Transport, emu: AdmEmulator, clock: FakeClock
) -> None:
    credentials = AdmCredentials(emu.client_id, "wrong", token_url=emu.token_url, endpoint=emu.url)
    provider = AdmProvider(transport, credentials, clock=clock)

    outcome = await provider.send(message(Content(title="t")), to(emu.register()))

    assert isinstance(outcome, AuthFailed) and "invalid_client" in outcome.reason
    assert emu.state.requests == []


async def test_missing_amazon_headers_are_refused_by_the_emulator(
    transport: Transport, emu: AdmEmulator, adm: AdmProvider
) -> None:
    request = await adm.authorize(adm.render(message(Content(title="t")), to(emu.register())))
    stripped = type(request)(
        request.method,
        request.url,
        tuple(h for h in request.headers if h[0] != "x-amzn-type-version"),
        request.body,
    )

    response = await transport.request(stripped)

    assert (response.status, json.loads(response.body)) == (400, {"reason": "InvalidType"})


async def test_token_refused_even_when_fresh_is_an_auth_failure(
    adm: AdmProvider, emu: AdmEmulator
) -> None:
    reg = emu.register()
    emu.state.faults.set(reg, Fault(401, {"reason": "AccessTokenExpired"}))

    outcome = await adm.send(message(Content(title="t")), to(reg))

    assert isinstance(outcome, AuthFailed) and "AccessTokenExpired" in outcome.reason
    assert [r.status for r in emu.state.requests] == [401, 401]
    assert emu.issuer.token_requests == 2
