"""BlackBerryProvider (PAP 2.1) against the BlackBerry gateway emulator over real TLS sockets."""

from __future__ import annotations

import email.parser
import email.policy
import json
import ssl
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import FakeClock, SystemClock
from clarion.delivery.runtime import build_runtime
from clarion.emulators.blackberry import BlackBerryEmulator, PapPush
from clarion.emulators.recording import Fault
from clarion.model.content import Content, LocalizedText
from clarion.model.message import Message, Recipient
from clarion.model.outcome import AuthFailed, InvalidToken, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import HttpResponse, Transport
from clarion.providers.blackberry import (
    AddressFormat,
    BlackBerryCredentials,
    BlackBerryProvider,
    batch_push_id,
)
from clarion.providers.curl_transport import CurlTransport
from clarion.providers.httpx_transport import HttpxTransport
from clarion.providers.outbound import OutboundPolicy
from clarion.providers.registry import (
    InvalidCredentialBody,
    build_provider,
    validate_credentials,
)
from clarion.store.db import Database
from tests.api.conftest import create_test_app, make_settings, no_dns

PRIVATE = OutboundPolicy(allow_private=True)
EXPIRES = datetime(2030, 9, 30, 13, 30, tzinfo=UTC)
GRANTED = {"status": "granted", "source": "os_prompt"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[BlackBerryEmulator]:
    async with BlackBerryEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture(params=["httpx", "curl"])
async def transport(
    request: pytest.FixtureRequest, emu: BlackBerryEmulator
) -> AsyncIterator[Transport]:
    transport: Transport
    if request.param == "curl":
        transport = CurlTransport(ca_file=emu.ca_file)
    else:
        transport = HttpxTransport(ca_file=emu.ca_file)
    yield transport
    await transport.aclose()


def provider_for(
    emu: BlackBerryEmulator, transport: Transport, clock: FakeClock, **changes: Any
) -> BlackBerryProvider:
    values: dict[str, Any] = {
        "endpoint": emu.push_url,
        "application_id": emu.application_id,
        "password": emu.password,
    }
    values.update(changes)
    return BlackBerryProvider(transport, BlackBerryCredentials(**values), clock=clock)


@pytest.fixture
def bb(emu: BlackBerryEmulator, transport: Transport, clock: FakeClock) -> BlackBerryProvider:
    return provider_for(emu, transport, clock)


def message(content: Content | None = None, **options: Any) -> Message:
    options.setdefault("expires_at", EXPIRES)
    return Message(content or Content(title="Order shipped"), uuid.uuid4(), **options)


def to(token: str, device_id: str | None = None) -> Recipient:
    return Recipient(device_id or f"bb-{token}", Platform.BLACKBERRY, token)


def control_of(push: PapPush) -> ET.Element:
    """The received control entity, parsed independently of both PAP modules."""
    return ET.fromstring(push.control)  # noqa: S314 - our own test data


async def test_push_is_multipart_pap_with_basic_auth_and_the_content_as_json(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    pin = emu.register()
    content = Content(title="Order shipped", body="Arrives Thursday", badge=2, data={"id": 7})
    sent = message(content)

    outcome = await bb.send(sent, to(pin))

    assert outcome == Sent()
    request = emu.state.requests[-1]
    assert request.status == 200 and request.path == "/pap"
    assert request.headers["content-type"].startswith('multipart/related; type="application/xml"')
    assert request.headers["x-wap-application-id"] == emu.application_id
    assert request.headers["authorization"].startswith("Basic ")
    push = emu.pushes[-1]
    assert push.code == 1001
    assert push.push_id == str(sent.push_id)
    assert push.source_reference == emu.application_id
    assert push.devices == (pin,)
    assert push.delivery_method == "unconfirmed"
    assert push.deliver_before == "2030-09-30T13:30:00Z"
    assert push.content_type == "application/json"
    assert push.content_json() == {
        "title": "Order shipped",
        "body": "Arrives Thursday",
        "badge": 2,
        "data": {"id": 7},
    }
    assert json.loads(request.decrypted or b"") == push.content_json()
    assert b'<!DOCTYPE pap PUBLIC "-//WAPFORUM//DTD PAP 2.1//EN"' in push.control
    address = control_of(push).find("push-message/address")
    assert address is not None
    assert address.get("address-value") == f"WAPPUSH={pin}%3A100/TYPE=USER@rim.net"


async def test_hostile_text_is_escaped_and_round_trips_exactly(
    emu: BlackBerryEmulator, transport: Transport, clock: FakeClock
) -> None:
    hostile = "a<b & c]]>d\"e'f</pap>"
    emu.application_id = "app<&]]>\"'"
    provider = provider_for(emu, transport, clock)
    content = Content(title=hostile, body="]]><!ENTITY x 'y'>", data={"k": "</pap>"})

    assert await provider.send(message(content), to(emu.register())) == Sent()

    push = emu.pushes[-1]
    push_message = control_of(push).find("push-message")
    assert push_message is not None
    assert push_message.get("source-reference") == "app<&]]>\"'"
    assert push.content_json()["title"] == hostile
    assert push.content_json()["body"] == "]]><!ENTITY x 'y'>"
    assert push.content_json()["data"] == {"k": "</pap>"}
    raw = emu.state.requests[-1]
    head = f"Content-Type: {raw.headers['content-type']}\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw.body)
    assert [p.get_content_type() for p in parsed.iter_parts()] == [
        "application/xml",
        "application/json",
    ]


async def test_email_addresses_are_percent_encoded_for_an_email_gateway(
    emu: BlackBerryEmulator, transport: Transport, clock: FakeClock
) -> None:
    provider = provider_for(emu, transport, clock, address_format=AddressFormat.EMAIL)
    user = emu.register("jane.doe+bb@example.com")

    assert await provider.send(message(), to(user)) == Sent()
    address = control_of(emu.pushes[-1]).find("push-message/address")
    assert address is not None
    assert address.get("address-value") == (
        "WAPPUSH=jane.doe%2Bbb%40example.com%3A100/TYPE=USER@rim.net"
    )
    refused = await provider.send(message(), to(emu.register()))
    assert isinstance(refused, Rejected) and "address_format" in refused.reason


async def test_unknown_pin_is_an_invalid_token(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    outcome = await bb.send(message(), to("2100000a"))

    assert isinstance(outcome, InvalidToken) and "2002" in outcome.reason
    assert emu.pushes[-1].code == 2002


async def test_gateway_errors_3xxx_and_4xxx_are_retried(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    pin = emu.register()
    emu.fail(pin, 3000, times=1)
    assert isinstance(await bb.send(message(), to(pin)), Retry)
    emu.fail(pin, 4001, times=1)
    assert isinstance(await bb.send(message(), to(pin)), Retry)
    emu.state.faults.set_all(Fault(503, headers={"retry-after": "7"}, times=1))
    assert await bb.send(message(), to(pin)) == Retry("server_error (HTTP 503)", 7.0)
    assert await bb.send(message(), to(pin)) == Sent()


async def test_wrong_password_is_an_auth_failure(
    emu: BlackBerryEmulator, transport: Transport, clock: FakeClock
) -> None:
    provider = provider_for(emu, transport, clock, password="not-the-password")

    outcome = await provider.send(message(), to(emu.register()))

    assert isinstance(outcome, AuthFailed) and "401" in outcome.reason
    assert emu.state.requests[-1].status == 401 and emu.pushes == []


async def test_push_id_is_unique_per_delivery_and_stable_across_its_retries(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    pin = emu.register()
    first, second = message(), message()
    emu.fail(pin, 3000, times=1)

    assert isinstance(await bb.send(first, to(pin)), Retry)
    assert await bb.send(first, to(pin)) == Sent()
    assert await bb.send(second, to(pin)) == Sent()
    # The same delivery once more (a worker died after sending): the gateway
    # knows the push-id, so nothing is delivered twice and the delivery is sent.
    assert await bb.send(first, to(pin)) == Sent()

    ids = [push.push_id for push in emu.pushes]
    assert ids == [str(first.push_id)] * 2 + [str(second.push_id), str(first.push_id)]
    assert [push.code for push in emu.pushes] == [3000, 1001, 1001, 2007]


async def test_a_batch_is_one_request_with_one_address_per_device(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    pins = [emu.register() for _ in range(4)]
    batch = {to(pin): message() for pin in pins}

    outcomes = await bb.send_many(batch)

    assert outcomes == {f"bb-{pin}": Sent() for pin in pins}
    assert len(emu.pushes) == 1
    assert sorted(emu.pushes[0].devices) == sorted(pins)
    assert emu.pushes[0].push_id == batch_push_id(list(batch.items()))
    again = await bb.send_many(batch)
    assert again == outcomes and emu.pushes[1].code == 2007
    assert emu.pushes[1].push_id == emu.pushes[0].push_id


async def test_a_refused_batch_gets_each_device_its_own_result(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    good = [emu.register() for _ in range(3)]
    busy = emu.register()
    emu.fail(busy, 3000)
    unknown = "deadbeef"
    batch = {to(pin): message() for pin in [*good, unknown, busy]}

    outcomes = await bb.send_many(batch)

    assert {d: type(o) for d, o in outcomes.items()} == {
        **{f"bb-{pin}": Sent for pin in good},
        f"bb-{unknown}": InvalidToken,
        f"bb-{busy}": Retry,
    }
    assert emu.pushes[0].code == 2002 and len(emu.pushes[0].devices) == 5
    assert sorted(p.devices[0] for p in emu.pushes[1:]) == sorted([*good, unknown, busy])
    assert {p.push_id for p in emu.pushes[1:]} == {str(m.push_id) for m in batch.values()}


async def test_devices_with_different_content_go_in_separate_pushes(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    content = Content(title="Shipped", localized={"de": LocalizedText(title="Versandt")})
    pins = [emu.register() for _ in range(3)]
    batch = {
        to(pins[0]): message(content.for_locale("de-AT")),
        to(pins[1]): message(content.for_locale("en")),
        to(pins[2]): message(content.for_locale("de")),
    }

    assert set((await bb.send_many(batch)).values()) == {Sent()}
    titles = {push.content_json()["title"]: sorted(push.devices) for push in emu.pushes}
    assert titles == {"Versandt": sorted([pins[0], pins[2]]), "Shipped": [pins[1]]}


async def test_8kb_limit_rejects_a_large_push_and_splits_a_large_batch(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    pin = emu.register()
    too_big = await bb.send(message(Content(title="x" * 8200)), to(pin))
    assert isinstance(too_big, Rejected) and "payload_too_large" in too_big.reason
    assert emu.state.requests == []

    pins = [emu.register() for _ in range(60)]
    batch = {to(p): message(Content(title="y" * 5000)) for p in pins}
    assert set((await bb.send_many(batch)).values()) == {Sent()}
    assert len(emu.pushes) > 1 and all(len(r.body) <= 8192 for r in emu.state.requests)
    assert sorted(d for push in emu.pushes for d in push.devices) == sorted(pins)


async def test_blackberry_override_sets_delivery_method_port_and_extra_content(
    bb: BlackBerryProvider, emu: BlackBerryEmulator
) -> None:
    pin = emu.register()
    overrides = {"delivery_method": "confirmed", "port": 7874, "sync": "inbox"}

    assert await bb.send(message(overrides=overrides), to(pin)) == Sent()
    push = emu.pushes[-1]
    assert push.delivery_method == "confirmed" and push.content_json()["sync"] == "inbox"
    assert b"%3A7874/TYPE=USER@rim.net" in push.control
    bad = await bb.send(message(overrides={"delivery_method": "carrier-pigeon"}), to(pin))
    assert isinstance(bad, Rejected) and len(emu.pushes) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '<pap><push-response push-id="p"><response-result code="1000"/>', Sent),
        (200, '<pap><badmessage-response code="2000" desc="bad"/></pap>', Rejected),
        (200, '<pap><push-response push-id="p"><response-result code="22002"/>', InvalidToken),
        (200, '<!DOCTYPE pap [<!ENTITY a "b">]><pap>&a;</pap>', Retry),
        (200, "not xml", Retry),
        (403, "", AuthFailed),
        (500, "", Retry),
        (400, "", Rejected),
    ],
)
def test_answers_map_through_the_tables(status: int, body: str, expected: type) -> None:
    provider = BlackBerryProvider(
        HttpxTransport(), BlackBerryCredentials("https://mds.example", "app"), clock=FakeClock()
    )
    if body.startswith("<pap><push-response"):
        body += "</push-response></pap>"

    assert isinstance(provider.classify(HttpResponse(status, {}, body.encode())), expected)


@pytest.mark.parametrize(
    ("control", "desc"),
    [
        (b'<?xml version="1.0"?><pap><push-message push-id="1"/></pap>', "DOCTYPE"),
        (b"<!DOCTYPE pap [<!ENTITY a 'b'>]><pap/>", "entity"),
        (
            b'<!DOCTYPE pap PUBLIC "-//WAPFORUM//DTD PAP 2.1//EN" "x"><pap><push-message>'
            b'<address address-value="WAPPUSH=2100000a%3A100/TYPE=USER@rim.net"/>'
            b"</push-message></pap>",
            "push-id",
        ),
        (
            b'<!DOCTYPE pap PUBLIC "-//WAPFORUM//DTD PAP 2.1//EN" "x"><pap>'
            b'<push-message push-id="1"><quality-of-service/></push-message></pap>',
            "address+",
        ),
    ],
    ids=["no-doctype", "entity", "no-push-id", "no-address"],
)
async def test_emulator_refuses_an_invalid_control_entity(
    emu: BlackBerryEmulator, control: bytes, desc: str
) -> None:
    body = (
        b"--b\r\nContent-Type: application/xml\r\n\r\n" + control + b"\r\n"
        b"--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--\r\n"
    )
    headers = {"content-type": 'multipart/related; type="application/xml"; boundary=b'}
    trust = ssl.create_default_context(cafile=str(emu.ca_file))
    async with httpx.AsyncClient(verify=trust, auth=(emu.application_id, "x")) as c:
        denied = await c.post(emu.push_url, content=body, headers=headers)
        assert denied.status_code == 401
        c.auth = httpx.BasicAuth(emu.application_id, emu.password or "")
        answer = await c.post(emu.push_url, content=body, headers=headers)
    result = ET.fromstring(answer.content).find("badmessage-response")  # noqa: S314
    assert result is not None and result.get("code") == "2000"
    assert desc in (result.get("desc") or "")


def test_credentials_body_is_validated_field_by_field() -> None:
    now = datetime.now(UTC)
    good = {"endpoint": "https://mds.example.com/pap", "application_id": "1234-abc"}
    validated = validate_credentials(
        Platform.BLACKBERRY, {**good, "password": "s3cret"}, policy=PRIVATE, now=now
    )
    assert validated.config["address_format"] == "pin"
    assert validated.public["password"] == "[redacted]" and "s3cret" not in repr(validated)
    assert validated.urls == (("endpoint", "https://mds.example.com/pap"),)
    bad = {
        "endpoint": "http://mds.example.com:8080/pap",
        "application_id": "app:with colon",
        "address_format": "fax",
        "colour": "blue",
    }
    with pytest.raises(InvalidCredentialBody) as caught:
        validate_credentials(Platform.BLACKBERRY, bad, policy=PRIVATE, now=now)
    assert {e.field for e in caught.value.errors} == {
        "endpoint",
        "application_id",
        "address_format",
        "colour",
    }
    with pytest.raises(InvalidCredentialBody, match="endpoint"):
        validate_credentials(Platform.BLACKBERRY, {"application_id": "a"}, policy=PRIVATE, now=now)


async def test_registry_builds_a_provider_that_delivers_to_the_gateway(
    emu: BlackBerryEmulator,
) -> None:
    clock = FakeClock()
    body = {
        "endpoint": emu.push_url,
        "application_id": emu.application_id,
        "password": emu.password,
        "address_format": "pin",
    }
    validated = validate_credentials(Platform.BLACKBERRY, body, policy=PRIVATE, now=clock.now())

    def factory(**_: Any) -> Transport:
        return HttpxTransport(ca_file=emu.ca_file)

    provider = build_provider(
        "blackberry", validated.config, transport_factory=factory, clock=clock, policy=PRIVATE
    )
    try:
        assert isinstance(provider, BlackBerryProvider)
        assert await provider.send(message(), to(emu.register())) == Sent()
    finally:
        await provider.transport.aclose()


async def test_notification_reaches_a_blackberry_pin_through_the_pipeline(
    database: Database, tmp_path: Path
) -> None:
    async with BlackBerryEmulator() as emu:
        settings = make_settings(
            database, tmp_path, allow_private_endpoints=True, ca_file=emu.ca_file
        )
        clock = SystemClock()
        runtime = build_runtime(database, settings, clock)
        services = Services(
            settings, database, clock, on_enqueue=runtime.worker.wake, resolver=no_dns
        )
        asgi = httpx.ASGITransport(app=create_app(services))
        try:
            async with httpx.AsyncClient(transport=asgi, base_url="http://clarion.test") as api:
                app = await create_test_app(api)
                credentials = {
                    "endpoint": emu.push_url,
                    "application_id": emu.application_id,
                    "password": emu.password,
                }
                put = await api.put(
                    f"/v1/apps/{app.id}/providers/blackberry",
                    json=credentials,
                    headers=app.server(),
                )
                assert put.status_code == 200, put.text
                pin = emu.register().upper()
                device = {"platform": "blackberry", "token": pin, "consent": GRANTED}
                device["user_id"] = "u-1"
                registered = await api.post(
                    f"/v1/apps/{app.id}/devices", json=device, headers=app.client()
                )
                assert registered.status_code == 201, registered.text
                accepted = await api.post(
                    f"/v1/apps/{app.id}/notifications",
                    json={"audience": {"users": ["u-1"]}, "content": {"title": "Hi & <bye>"}},
                    headers=app.server(),
                )
                assert accepted.status_code == 202, accepted.text
                await runtime.worker.run_until_idle()
                deliveries = await api.get(
                    f"/v1/apps/{app.id}/notifications/{accepted.json()['id']}/deliveries",
                    headers=app.server(),
                )
        finally:
            await runtime.aclose()
    assert [d["status"] for d in deliveries.json()["items"]] == ["sent"]
    assert [p.code for p in emu.pushes] == [1001]
    assert emu.pushes[0].devices == (pin.lower(),)
    assert emu.pushes[0].content_json() == {"title": "Hi & <bye>"}
    expires = emu.pushes[0].deliver_before
    assert expires is not None
    ahead = datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - clock.now()
    assert timedelta(0) < ahead
