"""Outbound safety: the address classifier, URL rules, DNS check, and the send-time guard.

Only loopback is ever connected to; private and link-local addresses are
checked with the classifier alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clarion.clock import SystemClock
from clarion.emulators.server import EmulatorServer
from clarion.model.content import Content
from clarion.model.message import Message, Recipient, WebPushSubscription
from clarion.model.outcome import Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import HttpRequest, TransportError
from clarion.providers.curl_transport import CurlTransport
from clarion.providers.outbound import (
    AddressClass,
    EndpointRefused,
    OutboundPolicy,
    address_guard,
    check_endpoint_url,
    classify_address,
    resolve_public,
    system_resolver,
)
from clarion.providers.registry import build_provider, curl_transport_factory
from clarion.providers.vapid import generate_vapid_keys
from tests.api.factories import webpush_subscription

STRICT = OutboundPolicy()
PRIVATE = OutboundPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.8.9.10", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("10.0.0.1", AddressClass.PRIVATE),
        ("172.16.5.4", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("169.254.169.254", AddressClass.LINK_LOCAL),
        ("fe80::1", AddressClass.LINK_LOCAL),
        ("100.64.0.1", AddressClass.SHARED),
        ("100.127.255.254", AddressClass.SHARED),
        ("fc00::1", AddressClass.UNIQUE_LOCAL),
        ("fd12:3456::1", AddressClass.UNIQUE_LOCAL),
        ("224.0.0.1", AddressClass.MULTICAST),
        ("ff02::1", AddressClass.MULTICAST),
        ("0.0.0.0", AddressClass.UNSPECIFIED),  # noqa: S104 - classified, never bound
        ("::", AddressClass.UNSPECIFIED),
        ("240.0.0.1", AddressClass.RESERVED),
        ("192.0.2.10", AddressClass.PRIVATE),
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("::ffff:169.254.169.254", AddressClass.LINK_LOCAL),
        ("::ffff:10.1.2.3", AddressClass.PRIVATE),
        ("8.8.8.8", AddressClass.PUBLIC),
        ("17.188.166.10", AddressClass.PUBLIC),
        ("2606:4700:4700::1111", AddressClass.PUBLIC),
    ],
)
def test_addresses_are_classified(address: str, kind: AddressClass) -> None:
    assert classify_address(address) is kind


def test_guard_allows_public_always_loopback_only_when_private_endpoints_are_on() -> None:
    strict, private = address_guard(STRICT), address_guard(PRIVATE)
    assert strict("93.184.215.14") and private("93.184.215.14")
    assert not strict("127.0.0.1") and private("127.0.0.1") and private("::1")
    for inside in ("169.254.169.254", "10.0.0.1", "100.64.0.1", "fd00::1", "not an ip"):
        assert not strict(inside) and not private(inside)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://push.example.net/a", "https"),
        ("https://127.0.0.1/a", "loopback"),
        ("https://[::1]/a", "loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://10.0.0.1/a", "private"),
        ("https://192.168.1.1/a", "private"),
        ("https://localhost/a", "localhost"),
        ("https://api.localhost/a", "localhost"),
        ("https://user@push.example.net/a", "user name"),
        ("https://user:pw@push.example.net/a", "user name"),
        ("https://push.example.net:8443/a", "port"),
        ("https://2130706433/a", "loopback"),
        ("https://0x7f.0.0.1/a", "loopback"),
        ("https://0251.0376.0251.0376/a", "link-local"),
        ("https://[::ffff:a9fe:a9fe]/a", "link-local"),
        ("https:///a", "host"),
        ("https://push.example.net/a b", "spaces"),
        ("https://[fe80::1%25eth0]/a", "link-local"),
    ],
)
def test_urls_that_could_reach_inside_are_refused(url: str, reason: str) -> None:
    with pytest.raises(EndpointRefused, match=reason) as caught:
        check_endpoint_url(url, STRICT, field="token.endpoint")
    assert caught.value.field == "token.endpoint"


def test_private_endpoints_setting_allows_loopback_on_any_port_but_never_metadata() -> None:
    for url in ("https://127.0.0.1:8443/a", "https://[::1]:9000/", "https://localhost:7000/"):
        check_endpoint_url(url, PRIVATE)
    for url in ("https://169.254.169.254/", "https://10.0.0.1/", "http://127.0.0.1/"):
        with pytest.raises(EndpointRefused):
            check_endpoint_url(url, PRIVATE)
    with pytest.raises(EndpointRefused, match="port"):
        check_endpoint_url("https://push.example.net:8443/", PRIVATE)


def test_allow_list_limits_device_urls_but_not_provider_endpoints() -> None:
    policy = STRICT.with_hosts(["*.push.services.mozilla.com", "fcm.googleapis.com"])
    check_endpoint_url("https://updates.push.services.mozilla.com/wpush/v2/x", policy)
    check_endpoint_url("https://fcm.googleapis.com/fcm/send/x", policy)
    with pytest.raises(EndpointRefused, match="allowed push hosts"):
        check_endpoint_url("https://push.example.net/x", policy)
    with pytest.raises(EndpointRefused, match="allowed push hosts"):
        check_endpoint_url("https://evilfcm.googleapis.com.example/x", policy)
    check_endpoint_url("https://push.example.net/x", policy, allow_list=False)


async def test_dns_answers_must_all_be_public() -> None:
    answers = {
        "public.example": ["93.184.215.14", "2606:2800:220:1::1"],
        "inside.example": ["10.0.0.7"],
        "mixed.example": ["93.184.215.14", "169.254.169.254"],
        "loop.example": ["127.0.0.1"],
    }

    async def resolver(host: str, port: int) -> list[str]:
        return answers.get(host, [])

    await resolve_public("https://public.example/a", STRICT, resolver=resolver)
    await resolve_public("https://unknown.example/a", STRICT, resolver=resolver)
    for host, kind in (("inside", "private"), ("mixed", "link-local"), ("loop", "loopback")):
        with pytest.raises(EndpointRefused, match=f"resolves to a {kind}"):
            await resolve_public(f"https://{host}.example/a", STRICT, resolver=resolver)
    await resolve_public("https://loop.example/a", PRIVATE, resolver=resolver)


async def test_system_resolver_sees_localhost_as_loopback() -> None:
    addresses = await system_resolver("localhost", 443)
    assert addresses and all(classify_address(a) is AddressClass.LOOPBACK for a in addresses)


class _Listener:
    """A loopback TCP listener that counts the connections it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def listener() -> AsyncIterator[_Listener]:
    found = _Listener()
    found.server = await asyncio.start_server(found._accept, "127.0.0.1", 0)
    yield found
    found.server.close()
    await found.server.wait_closed()


async def test_guard_refuses_a_name_that_now_resolves_to_loopback_and_no_connection_is_made(
    listener: _Listener,
) -> None:
    transport = CurlTransport(address_guard=address_guard(STRICT))
    try:
        with pytest.raises(TransportError, match="address guard"):
            await transport.request(HttpRequest("POST", f"https://localhost:{listener.port}/x"))
    finally:
        await transport.aclose()
    await asyncio.sleep(0.05)
    assert listener.connections == 0


async def test_device_stored_while_private_endpoints_were_on_gets_nothing_once_off(
    listener: _Listener,
) -> None:
    """The setting was on when the device registered; now it is off: no connection."""
    endpoint = f"https://127.0.0.1:{listener.port}/wpush/abc"
    check_endpoint_url(endpoint, PRIVATE)  # it was acceptable then
    stored = webpush_subscription(endpoint)
    subscription = WebPushSubscription(endpoint, **stored["keys"])
    config = {
        "subject": "mailto:ops@example.com",
        "vapid_private_key": generate_vapid_keys().private_pem,
    }
    provider = build_provider(
        Platform.WEBPUSH,
        config,
        transport_factory=curl_transport_factory(),
        clock=SystemClock(),
        policy=STRICT,
    )
    recipient = Recipient("dev-1", Platform.WEBPUSH, endpoint, subscription=subscription)
    try:
        outcome = await provider.send(Message(Content(title="Hi"), uuid.uuid4()), recipient)
    finally:
        await provider.transport.aclose()
    await asyncio.sleep(0.05)
    assert isinstance(outcome, Rejected) and "endpoint_refused" in outcome.reason
    assert listener.connections == 0


async def test_redirect_from_a_push_service_is_not_followed(
    listener: _Listener, tmp_path: Path
) -> None:
    async def redirect(request: Request) -> Response:
        target = f"https://127.0.0.1:{listener.port}/stolen"
        return Response(status_code=307, headers={"location": target})

    app = Starlette(routes=[Route("/wpush/{token}", redirect, methods=["POST"])])
    async with EmulatorServer(app, tls=True) as server:
        endpoint = f"{server.url}/wpush/abc"
        stored = webpush_subscription(endpoint)
        subscription = WebPushSubscription(endpoint, **stored["keys"])
        config = {
            "subject": "mailto:ops@example.com",
            "vapid_private_key": generate_vapid_keys().private_pem,
        }
        provider = build_provider(
            Platform.WEBPUSH,
            config,
            transport_factory=curl_transport_factory(server.ca_file),
            clock=SystemClock(),
            policy=PRIVATE,
        )
        recipient = Recipient("dev-1", Platform.WEBPUSH, endpoint, subscription=subscription)
        try:
            outcome = await provider.send(Message(Content(title="Hi"), uuid.uuid4()), recipient)
        finally:
            await provider.transport.aclose()
    await asyncio.sleep(0.05)
    assert not isinstance(outcome, Sent | Retry), outcome
    assert listener.connections == 0
