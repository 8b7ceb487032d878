"""Huawei Push Kit provider against the HMS emulator, over real sockets."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from clarion.clock import FakeClock
from clarion.emulators.hms import HmsEmulator, hms_error_body
from clarion.emulators.recording import Fault
from clarion.model.content import Content, LocalizedText
from clarion.model.message import Message, Priority, Recipient
from clarion.model.outcome import AuthFailed, InvalidToken, Outcome, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import HttpResponse, InvalidCredentials, PayloadTooLarge, Transport
from clarion.providers.hms import HMS_TOKEN_URL, HmsCredentials, HmsProvider
from clarion.providers.httpx_transport import HttpxTransport

APP_ID = "10086123"
SECRET = "app-secret-value"
TOKEN = "IQAAAACy0kYdAAAjP8fS5mE-huawei-token"
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
async def emulator(clock: FakeClock) -> AsyncIterator[HmsEmulator]:
    async with HmsEmulator(clock=clock) as emu:
        emu.add_app(APP_ID, SECRET)
        yield emu


@pytest.fixture(params=TRANSPORTS)
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    made = make_transport(request.param)
    yield made
    await made.aclose()


def credentials(emulator: HmsEmulator, secret: str = SECRET) -> HmsCredentials:
    return HmsCredentials(APP_ID, secret, token_url=emulator.token_url, endpoint=emulator.url)


@pytest.fixture
def provider(emulator: HmsEmulator, transport: Transport, clock: FakeClock) -> HmsProvider:
    return HmsProvider(transport, credentials(emulator), clock=clock)


def message(content: Content | None = None, **options: Any) -> Message:
    return Message(
        content=content or Content(title="Your order shipped", body="Arrives Thursday"),
        push_id=uuid.uuid4(),
        **options,
    )


def recipient(token: str = TOKEN, locale: str | None = None) -> Recipient:
    return Recipient(device_id="d1", platform=Platform.HMS, token=token, locale=locale)


def sent_body(emulator: HmsEmulator, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(emulator.state.requests[index].body)
    return body


def test_default_token_url_is_huaweis() -> None:
    assert HmsCredentials(APP_ID, SECRET).token_url == HMS_TOKEN_URL
    assert HmsCredentials(APP_ID, SECRET).send_url == (
        f"https://push-api.cloud.huawei.com/v1/{APP_ID}/messages:send"
    )


async def test_push_is_sent_with_the_request_id(
    provider: HmsProvider, emulator: HmsEmulator, clock: FakeClock
) -> None:
    push = message(
        Content(title="Shipped", body="Thursday", url="https://e.test/o/1", sound="default"),
        expires_at=clock.now() + timedelta(seconds=900),
        collapse_key="7",
        priority=Priority.NORMAL,
    )
    outcome = await provider.send(push, recipient())
    assert isinstance(outcome, Sent)
    assert outcome.provider_id
    body = sent_body(emulator)
    assert body["validate_only"] is False
    native = body["message"]
    assert native["token"] == [TOKEN]
    assert native["android"]["urgency"] == "NORMAL"
    assert native["android"]["ttl"] == "900s"
    assert native["android"]["collapse_key"] == 7
    assert native["android"]["notification"] == {
        "title": "Shipped",
        "body": "Thursday",
        "click_action": {"type": 2, "url": "https://e.test/o/1"},
        "default_sound": True,
        "tag": "7",
    }
    assert emulator.state.requests[-1].headers["content-type"] == "application/json;charset=UTF-8"


async def test_data_is_sent_as_one_json_string(
    provider: HmsProvider, emulator: HmsEmulator
) -> None:
    content = Content(data={"order": 1234, "items": [{"sku": "a"}]})
    assert isinstance(await provider.send(message(content), recipient()), Sent)
    native = sent_body(emulator)["message"]
    assert json.loads(native["data"]) == {"order": 1234, "items": [{"sku": "a"}]}
    assert "notification" not in native["android"]


async def test_localized_title_is_rendered(provider: HmsProvider, emulator: HmsEmulator) -> None:
    content = Content(title="Shipped", localized={"de": LocalizedText(title="Versandt")})
    device = recipient(locale="de-AT")
    assert isinstance(await provider.send(message(content.for_locale(device.locale)), device), Sent)
    assert sent_body(emulator)["message"]["android"]["notification"]["title"] == "Versandt"


async def test_hms_override_is_deep_merged(provider: HmsProvider, emulator: HmsEmulator) -> None:
    overrides = {"android": {"category": "IM", "notification": {"channel_id": "orders"}}}
    assert isinstance(await provider.send(message(overrides=overrides), recipient()), Sent)
    android = sent_body(emulator)["message"]["android"]
    assert android["category"] == "IM"
    assert android["notification"]["channel_id"] == "orders"
    assert android["notification"]["click_action"] == {"type": 3}


async def test_oversized_payload_is_refused_before_sending(
    provider: HmsProvider, emulator: HmsEmulator
) -> None:
    big = message(Content(title="t", data={"blob": "x" * 4000}))
    with pytest.raises(PayloadTooLarge):
        provider.render(big, recipient())
    assert isinstance(await provider.send(big, recipient()), Rejected)
    assert emulator.state.requests == []


async def test_long_token_does_not_count_towards_the_size(provider: HmsProvider) -> None:
    content = Content(title="t", data={"blob": "x" * 3800})
    assert isinstance(await provider.send(message(content), recipient(TOKEN + "A" * 400)), Sent)


async def test_invalid_token_is_dropped(provider: HmsProvider, emulator: HmsEmulator) -> None:
    emulator.unregister(TOKEN)
    outcome = await provider.send(message(), recipient())
    assert isinstance(outcome, InvalidToken)
    assert outcome.reason.startswith("80300007")


@ONE_TRANSPORT
@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"android": {"ttl": "one day"}}, "80100004"),
        ({"android": {"notification": {"click_action": None}}}, "80100003"),
        ({"android": {"urgency": "URGENT"}}, "80100001"),
        ({"topic": "news"}, "80100001"),
    ],
)
async def test_malformed_message_is_rejected(
    provider: HmsProvider, override: dict[str, Any], code: str
) -> None:
    outcome = await provider.send(message(overrides=override), recipient())
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith(code)


def partial(success: int, illegal: list[str]) -> dict[str, Any]:
    detail = {"success": success, "failure": len(illegal), "illegal_tokens": illegal}
    return hms_error_body("80100000", json.dumps(detail))


@ONE_TRANSPORT
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(status=200, body=hms_error_body("81000001")), Retry("81000001")),
        (
            Fault(status=503, body={"error": "busy"}, headers={"retry-after": "12"}),
            Retry("503", 12.0),
        ),
        (Fault(status=200, body=hms_error_body("80300008")), Rejected("80300008")),
        (Fault(status=200, body=hms_error_body("80300010")), Rejected("80300010")),
        (Fault(status=200, body=hms_error_body("80300011")), Rejected("80300011")),
        (Fault(status=200, body=hms_error_body("80300002")), AuthFailed("80300002")),
        (Fault(status=200, body=partial(0, [TOKEN])), InvalidToken("80100000")),
        (Fault(status=200, body=partial(1, [])), Sent()),
    ],
)
async def test_huawei_codes_map_to_outcomes(
    provider: HmsProvider, emulator: HmsEmulator, fault: Fault, expected: Outcome
) -> None:
    emulator.state.faults.set(TOKEN, fault)
    outcome = await provider.send(message(), recipient())
    assert type(outcome) is type(expected)
    if isinstance(expected, Retry):
        assert isinstance(outcome, Retry)
        assert outcome.reason.startswith(expected.reason)
        assert outcome.after == expected.after
    elif not isinstance(expected, Sent):
        assert outcome.reason.startswith(expected.reason)  # type: ignore[union-attr]


async def test_access_token_is_cached_and_refreshed_on_expiry(
    provider: HmsProvider, emulator: HmsEmulator, clock: FakeClock
) -> None:
    for _ in range(20):
        assert isinstance(await provider.send(message(), recipient()), Sent)
    assert emulator.issuer.token_requests == 1
    clock.advance(3600 - 59)  # inside the 60 s margin
    assert isinstance(await provider.send(message(), recipient()), Sent)
    assert emulator.issuer.token_requests == 2


async def test_fifty_concurrent_sends_fetch_one_token(
    provider: HmsProvider, emulator: HmsEmulator
) -> None:
    outcomes = await asyncio.gather(
        *(provider.send(message(), recipient(f"{TOKEN}-{i}")) for i in range(50))
    )
    assert all(isinstance(o, Sent) for o in outcomes)
    assert emulator.issuer.token_requests == 1


async def test_expired_access_token_80200003_is_refreshed_and_resent(
    provider: HmsProvider, emulator: HmsEmulator
) -> None:
    assert isinstance(await provider.send(message(), recipient()), Sent)
    emulator.issuer.expire_all()
    assert isinstance(await provider.send(message(), recipient()), Sent)
    assert [r.status for r in emulator.state.requests] == [200, 401, 200]
    assert emulator.issuer.token_requests == 2


async def test_token_refused_twice_is_auth_failed(
    provider: HmsProvider, emulator: HmsEmulator
) -> None:
    emulator.state.faults.set(TOKEN, Fault(status=401, body=hms_error_body("80200001")))
    outcome = await provider.send(message(), recipient())
    assert isinstance(outcome, AuthFailed)
    assert "80200001" in outcome.reason
    assert emulator.issuer.token_requests == 2


async def test_wrong_app_secret_is_auth_failed(
    emulator: HmsEmulator, transport: Transport, clock: FakeClock
) -> None:
    wrong = HmsProvider(transport, credentials(emulator, "nope"), clock=clock)
    outcome = await wrong.send(message(), recipient())
    assert isinstance(outcome, AuthFailed)
    assert "invalid_client" in outcome.reason
    assert emulator.state.requests == []


async def test_token_endpoint_down_is_retry(provider: HmsProvider, emulator: HmsEmulator) -> None:
    emulator.issuer.faults.set_all(Fault(status=503, body={"error": "down"}, times=1))
    outcome = await provider.send(message(), recipient())
    assert isinstance(outcome, Retry)
    assert isinstance(await provider.send(message(), recipient()), Sent)


def test_http_401_without_a_body_counts_as_a_refused_token(provider: HmsProvider) -> None:
    assert provider.token_refused(HttpResponse(401, {}, b""))
    assert not provider.token_refused(HttpResponse(200, {}, json.dumps(partial(1, [])).encode()))


def test_credentials_from_the_api_body_name_a_missing_field() -> None:
    credentials = HmsCredentials.from_config({"app_id": APP_ID, "client_secret": SECRET})
    assert credentials.token_url == HMS_TOKEN_URL
    assert SECRET not in repr(credentials)
    with pytest.raises(InvalidCredentials, match="'client_secret'"):
        HmsCredentials.from_config({"app_id": APP_ID})
