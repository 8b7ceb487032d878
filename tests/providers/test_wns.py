"""WnsProvider against the WNS emulator over real TLS sockets."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from clarion.clock import FakeClock
from clarion.emulators.recording import Fault, RecordedRequest
from clarion.emulators.wns import WnsEmulator
from clarion.model.content import Action, Content, LocalizedText
from clarion.model.message import Message, Priority, Recipient
from clarion.model.outcome import AuthFailed, InvalidToken, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import HttpResponse, PayloadTooLarge, Transport
from clarion.providers.httpx_transport import HttpxTransport
from clarion.providers.wns import WnsCredentials, WnsProvider

TRANSPORTS = ["httpx"]
if importlib.util.find_spec("clarion.providers.curl_transport") is not None:
    TRANSPORTS.append("curl")


def make_transport(kind: str, emu: WnsEmulator) -> Transport:
    if kind == "curl":
        from clarion.providers.curl_transport import CurlTransport

        return CurlTransport(ca_file=emu.ca_file)
    return HttpxTransport(ca_file=emu.ca_file, http2=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[WnsEmulator]:
    async with WnsEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture(params=TRANSPORTS)
async def transport(request: pytest.FixtureRequest, emu: WnsEmulator) -> AsyncIterator[Transport]:
    transport = make_transport(request.param, emu)
    yield transport
    await transport.aclose()


@pytest.fixture
def wns(transport: Transport, emu: WnsEmulator, clock: FakeClock) -> WnsProvider:
    credentials = WnsCredentials(emu.client_id, emu.client_secret, token_url=emu.token_url)
    return WnsProvider(transport, credentials, clock=clock)


def message(content: Content, **options: Any) -> Message:
    return Message(content=content, push_id=uuid.uuid4(), **options)


def to(uri: str) -> Recipient:
    return Recipient(device_id="dev-1", platform=Platform.WNS, token=uri)


def last(emu: WnsEmulator) -> RecordedRequest:
    return emu.state.requests[-1]


def parsed(request: RecordedRequest) -> ET.Element:
    return ET.fromstring(request.body)  # noqa: S314 - our own payload


async def test_toast_arrives_as_adaptive_xml_with_wns_headers(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    content = Content(
        title="Your order shipped",
        subtitle="Order #1234",
        body="Arrives Thursday",
        image="https://example.com/box.png",
        sound="default",
        url="myapp://orders/1234",
        actions=(Action("track", "Track", "myapp://track/1234"), Action("later", "Later")),
    )
    outcome = await wns.send(
        message(content, ttl=3600, collapse_key="order1234"), to(emu.channel("pc"))
    )

    assert isinstance(outcome, Sent) and outcome.provider_id
    request = last(emu)
    assert request.status == 200
    headers = request.headers
    assert headers["authorization"].startswith("Bearer ")
    assert headers["x-wns-type"] == "wns/toast"
    assert headers["content-type"] == "text/xml"
    assert headers["x-wns-ttl"] == "3600"
    assert headers["x-wns-tag"] == "order1234"
    assert headers["x-wns-priority"] == "1"
    assert headers["x-wns-requestforstatus"] == "true"
    toast = parsed(request)
    assert toast.get("launch") == "myapp://orders/1234"
    assert toast.get("activationType") == "protocol"
    texts = toast.findall("./visual/binding[@template='ToastGeneric']/text")
    assert [t.text for t in texts] == ["Your order shipped", "Arrives Thursday", "Order #1234"]
    assert texts[2].get("placement") == "attribution"
    assert toast.find("./visual/binding/image").get("src") == "https://example.com/box.png"  # type: ignore[union-attr]
    actions = toast.findall("./actions/action")
    assert [(a.get("content"), a.get("arguments"), a.get("activationType")) for a in actions] == [
        ("Track", "myapp://track/1234", "protocol"),
        ("Later", "later", "foreground"),
    ]
    assert toast.find("audio").get("src") == "ms-winsoundevent:Notification.Default"  # type: ignore[union-attr]


HOSTILE = "5 < 6 & \"quoted\" 'single' ]]> <![CDATA[x]]> </text><script>&amp;"


async def test_hostile_text_yields_well_formed_toast_whose_text_round_trips(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    content = Content(
        title=HOSTILE,
        body="bell\x07 and nul\x00 dropped, emoji kept 🎉",
        url='myapp://x?a=1&b="2"',
        actions=(Action("a", HOSTILE, "myapp://a?<>&"),),
    )
    outcome = await wns.send(message(content), to(emu.channel("pc")))

    assert isinstance(outcome, Sent)
    toast = parsed(last(emu))
    texts = [t.text for t in toast.iter("text")]
    assert texts == [HOSTILE, "bell and nul dropped, emoji kept 🎉"]
    assert toast.get("launch") == 'myapp://x?a=1&b="2"'
    action = toast.find("./actions/action")
    assert action is not None
    assert (action.get("content"), action.get("arguments")) == (HOSTILE, "myapp://a?<>&")


async def test_localized_title_is_rendered_for_the_device_locale(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    content = Content(
        title="Your order shipped",
        body="Arrives Thursday",
        localized={"fr": LocalizedText(title="Commande expédiée", body="Arrive jeudi")},
    )
    await wns.send(message(content.for_locale("fr-CA")), to(emu.channel("pc")))

    texts = [t.text for t in parsed(last(emu)).iter("text")]
    assert texts == ["Commande expédiée", "Arrive jeudi"]


async def test_silent_content_goes_as_raw_json_data(wns: WnsProvider, emu: WnsEmulator) -> None:
    content = Content(data={"order_id": "1234", "count": 2})
    outcome = await wns.send(message(content, priority=Priority.NORMAL), to(emu.channel("pc")))

    assert isinstance(outcome, Sent)
    request = last(emu)
    assert request.headers["x-wns-type"] == "wns/raw"
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.headers["x-wns-priority"] == "3"
    assert json.loads(request.body) == {"order_id": "1234", "count": 2}


async def test_badge_override_sends_badge_xml(wns: WnsProvider, emu: WnsEmulator) -> None:
    outcome = await wns.send(
        message(Content(title="t", badge=7), overrides={"type": "badge"}), to(emu.channel("pc"))
    )

    assert isinstance(outcome, Sent)
    request = last(emu)
    assert request.headers["x-wns-type"] == "wns/badge"
    assert request.body == b'<badge value="7" />'


async def test_tile_override_shows_title_and_body(wns: WnsProvider, emu: WnsEmulator) -> None:
    content = Content(title="Score", body="2 - 1")
    outcome = await wns.send(message(content, overrides={"type": "tile"}), to(emu.channel("pc")))

    assert isinstance(outcome, Sent)
    tile = parsed(last(emu))
    assert [b.get("template") for b in tile.iter("binding")] == ["TileMedium", "TileWide"]
    assert [t.text for t in tile.iter("text")] == ["Score", "2 - 1", "Score", "2 - 1"]


async def test_override_attributes_and_raw_xml_are_honoured(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    uri = emu.channel("pc")
    overrides = {"toast": {"scenario": "reminder"}, "image": {"placement": "hero"}, "group": "g1"}
    await wns.send(
        message(Content(title="t", image="https://e.x/i.png"), overrides=overrides), to(uri)
    )
    toast = parsed(last(emu))
    assert toast.get("scenario") == "reminder"
    assert toast.find(".//image").get("placement") == "hero"  # type: ignore[union-attr]
    assert last(emu).headers["x-wns-group"] == "g1"

    xml = (
        '<toast><visual><binding template="ToastGeneric">'
        "<text>own</text></binding></visual></toast>"
    )
    outcome = await wns.send(message(Content(title="t"), overrides={"xml": xml}), to(uri))
    assert isinstance(outcome, Sent)
    assert last(emu).body == xml.encode()


async def test_override_xml_with_the_wrong_root_is_rejected_by_wns(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    outcome = await wns.send(
        message(Content(title="t"), overrides={"xml": '<badge value="1"/>'}),
        to(emu.channel("pc")),
    )

    assert isinstance(outcome, Rejected)
    assert "bad_request" in outcome.reason and "expected <toast>" in outcome.reason


async def test_unusable_override_is_rejected_without_sending(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    uri = emu.channel("pc")
    bad_type = await wns.send(message(Content(title="t"), overrides={"type": "banner"}), to(uri))
    bad_attr = await wns.send(
        message(Content(title="t"), overrides={"toast": {"a b": "x"}}), to(uri)
    )

    assert isinstance(bad_type, Rejected) and "banner" in bad_type.reason
    assert isinstance(bad_attr, Rejected)
    assert emu.state.requests == []


async def test_long_collapse_key_becomes_a_stable_16_character_tag(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    uri = emu.channel("pc")
    for _ in range(2):
        outcome = await wns.send(
            message(Content(title="t"), collapse_key="order-1234/shipping-update"), to(uri)
        )
        assert isinstance(outcome, Sent)
    first, second = (r.headers["x-wns-tag"] for r in emu.state.requests)
    assert first == second and len(first) == 16 and first.isalnum()


async def test_ttl_counts_down_from_expires_at(
    wns: WnsProvider, emu: WnsEmulator, clock: FakeClock
) -> None:
    expires_at = clock.now() + timedelta(seconds=600)
    clock.advance(100)
    await wns.send(
        message(Content(title="t"), ttl=600, expires_at=expires_at), to(emu.channel("pc"))
    )

    assert last(emu).headers["x-wns-ttl"] == "500"


async def test_payload_over_5000_bytes_is_rejected_before_sending(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    big = Content(title="t", body="x" * 5000)
    with pytest.raises(PayloadTooLarge) as raised:
        wns.render(message(big), to(emu.channel("pc")))
    outcome = await wns.send(message(big), to(emu.channel("pc")))

    assert raised.value.limit == 5000
    assert isinstance(outcome, Rejected) and "payload_too_large" in outcome.reason
    assert emu.state.requests == []


async def test_expired_channel_is_an_invalid_token(wns: WnsProvider, emu: WnsEmulator) -> None:
    uri = emu.channel("old")
    emu.expire("old")

    outcome = await wns.send(message(Content(title="t")), to(uri))

    assert isinstance(outcome, InvalidToken)
    assert outcome.reason.startswith("channel_expired (410")


async def test_unknown_channel_is_an_invalid_token(wns: WnsProvider, emu: WnsEmulator) -> None:
    uri = emu.channel("gone")
    emu.forget("gone")

    outcome = await wns.send(message(Content(title="t")), to(uri))

    assert isinstance(outcome, InvalidToken) and "channel_unknown (404" in outcome.reason


async def test_throttled_channel_retries_after_continue_after(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    uri = emu.channel("pc")
    emu.throttle("pc", continue_after=30)

    throttled = await wns.send(message(Content(title="t")), to(uri))
    later = await wns.send(message(Content(title="t")), to(uri))

    assert throttled == Retry("throttled (406; status=channelthrottled)", 30.0)
    assert isinstance(later, Sent)


async def test_channel_of_another_app_is_an_auth_failure(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    uri = emu.channel("theirs", owner="ms-app://s-1-15-2-someone-else")

    outcome = await wns.send(message(Content(title="t")), to(uri))

    assert isinstance(outcome, AuthFailed) and "403" in outcome.reason


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (500, {"retry-after": "7"}, Retry("server_error (500)", 7.0)),
        (503, {}, Retry("unavailable (503)", None)),
        (
            400,
            {"x-wns-error-description": "bad header"},
            Rejected("bad_request (400; error=bad header)"),
        ),
        (413, {}, Rejected("payload_too_large (413)")),
        (404, {}, InvalidToken("channel_unknown (404)")),
    ],
)
async def test_service_errors_map_to_outcomes(
    wns: WnsProvider,
    emu: WnsEmulator,
    status: int,
    headers: dict[str, str],
    expected: object,
) -> None:
    emu.state.faults.set("pc", Fault(status=status, headers=headers, times=1))

    outcome = await wns.send(message(Content(title="t")), to(emu.channel("pc")))

    assert outcome == expected


async def test_device_connection_status_is_reported_in_reasons(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    response = HttpResponse(
        410,
        {"x-wns-status": "dropped", "x-wns-deviceconnectionstatus": "disconnected"},
    )

    assert wns.classify(response) == InvalidToken(
        "channel_expired (410; status=dropped; device=disconnected)"
    )


async def test_token_is_cached_and_refetched_when_it_expires(
    wns: WnsProvider, emu: WnsEmulator, clock: FakeClock
) -> None:
    uri = emu.channel("pc")
    for _ in range(3):
        assert isinstance(await wns.send(message(Content(title="t")), to(uri)), Sent)
    assert emu.issuer.token_requests == 1

    clock.advance(86400 - 30)
    assert isinstance(await wns.send(message(Content(title="t")), to(uri)), Sent)

    assert emu.issuer.token_requests == 2
    tokens = {r.headers["authorization"] for r in emu.state.requests}
    assert len(tokens) == 2


async def test_rejected_token_is_refreshed_and_the_push_retried_once(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    uri = emu.channel("pc")
    await wns.send(message(Content(title="t")), to(uri))
    emu.issuer.expire_all()

    outcome = await wns.send(message(Content(title="t")), to(uri))

    assert isinstance(outcome, Sent)
    assert [r.status for r in emu.state.requests] == [200, 401, 200]
    assert emu.issuer.token_requests == 2


async def test_classify_alone_drops_the_token_on_401(wns: WnsProvider, emu: WnsEmulator) -> None:
    first = await wns.tokens.token()

    outcome = wns.classify(HttpResponse(401, {}))

    assert isinstance(outcome, Retry) and outcome.reason.startswith("token_rejected")
    assert await wns.tokens.token() != first


async def test_wrong_client_secret_is_an_auth_failure(
    transport: Transport, emu: WnsEmulator, clock: FakeClock
) -> None:
    credentials = WnsCredentials(emu.client_id, "wrong", token_url=emu.token_url)
    provider = WnsProvider(transport, credentials, clock=clock)

    outcome = await provider.send(message(Content(title="t")), to(emu.channel("pc")))

    assert isinstance(outcome, AuthFailed) and "invalid_client" in outcome.reason
    assert emu.state.requests == []


async def test_raw_override_is_sent_as_given_or_as_json(wns: WnsProvider, emu: WnsEmulator) -> None:
    uri = emu.channel("pc")
    await wns.send(message(Content(title="t"), overrides={"type": "raw", "raw": "ping"}), to(uri))
    await wns.send(message(Content(), overrides={"raw": {"sync": True}}), to(uri))

    assert [r.body for r in emu.state.requests] == [b"ping", b'{"sync":true}']
    assert all(r.headers["x-wns-type"] == "wns/raw" for r in emu.state.requests)


@pytest.mark.parametrize(
    "xml",
    ["<toast><visual>", '<!DOCTYPE toast [<!ENTITY a "b">]><toast>&a;</toast>'],
)
async def test_malformed_or_dtd_override_xml_is_rejected_by_wns(
    wns: WnsProvider, emu: WnsEmulator, xml: str
) -> None:
    outcome = await wns.send(
        message(Content(title="t"), overrides={"xml": xml}), to(emu.channel("pc"))
    )

    assert isinstance(outcome, Rejected) and outcome.reason.startswith("bad_request (400")


async def test_token_refused_even_when_fresh_is_an_auth_failure(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    emu.state.faults.set("pc", Fault(status=401))

    outcome = await wns.send(message(Content(title="t")), to(emu.channel("pc")))

    assert isinstance(outcome, AuthFailed) and "token_rejected" in outcome.reason
    assert [r.status for r in emu.state.requests] == [401, 401]
    assert emu.issuer.token_requests == 2


async def test_bare_badge_number_goes_as_a_badge_push(wns: WnsProvider, emu: WnsEmulator) -> None:
    outcome = await wns.send(message(Content(badge=0)), to(emu.channel("pc")))

    assert isinstance(outcome, Sent)
    assert last(emu).headers["x-wns-type"] == "wns/badge"
    assert last(emu).body == b'<badge value="0" />'


async def test_priority_override_outside_1_to_4_is_rejected(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    outcome = await wns.send(
        message(Content(title="t"), overrides={"priority": "urgent"}), to(emu.channel("pc"))
    )

    assert isinstance(outcome, Rejected) and "wns.priority" in outcome.reason
    assert emu.state.requests == []


async def test_a_burst_of_sends_shares_one_token_request(
    wns: WnsProvider, emu: WnsEmulator
) -> None:
    uris = [emu.channel(f"pc{i}") for i in range(50)]

    outcomes = await asyncio.gather(*(wns.send(message(Content(title="t")), to(u)) for u in uris))

    assert all(isinstance(o, Sent) for o in outcomes)
    assert emu.issuer.token_requests == 1
