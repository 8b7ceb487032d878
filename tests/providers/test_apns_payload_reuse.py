"""ApnsProvider reuses a rendered payload across devices only when it would render the same.

The sender builds one `Message` per device; the provider keeps the payload
bytes of recent pushes so a campaign is JSON-encoded once, not per device.
These tests pin down that reuse never changes a request: whatever was sent
before, each request is byte for byte what a fresh provider would render.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.clock import FakeClock
from clarion.model.content import Content, LocalizedText
from clarion.model.message import Message, Priority, Recipient
from clarion.model.platform import Platform
from clarion.providers.apns import ApnsProvider, ApnsTokenCredentials
from clarion.providers.base import HttpRequest, HttpResponse

CONTENT = Content(
    title="Your order shipped",
    body="Arrives Thursday",
    badge=1,
    data={"order_id": 1234},
    localized={"fr": LocalizedText(title="Commande expédiée")},
)


class Unused:
    """A transport that is never called: these tests only render."""

    async def request(self, request: HttpRequest) -> HttpResponse:
        raise AssertionError("no request is sent")

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def credentials() -> ApnsTokenCredentials:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return ApnsTokenCredentials("KEY0000001", "TEAM000001", pem, "com.example.app")


def fresh(credentials: ApnsTokenCredentials, clock: FakeClock) -> ApnsProvider:
    return ApnsProvider(credentials, Unused(), clock=clock)


def device(index: int, locale: str | None = None) -> Recipient:
    return Recipient(f"dev-{index}", Platform.APNS, f"{index:064x}", locale)


def pushes() -> list[tuple[Message, Recipient]]:
    """Pushes whose renderings differ in every way the payload cache must not blur."""
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    result = []
    for index, locale in enumerate(["fr-CA", "en", None, "fr"]):
        message = Message(
            CONTENT.for_locale(locale), uuid.uuid4(), expires_at=expires, category="ORDER"
        )
        result.append((message, device(index, locale)))
    variants: list[dict[str, Any]] = [
        {"content": Content(title="T", data={"flag": 1})},
        {"content": Content(title="T", data={"flag": True})},  # 1 == True, not in JSON
        {"content": Content(title="T", data={"flag": 1.0})},
        {"content": Content(title="T", badge=1)},
        {"content": Content(title="T", badge=True)},  # type: ignore[arg-type]
        {"content": Content(title="T"), "category": "OTHER"},
        {"content": Content(title="T"), "overrides": {"aps": {"thread-id": "a"}}},
        {"content": Content(title="T"), "overrides": {"aps": {"thread-id": "b"}}},
        {"content": Content(title="T"), "overrides": {"headers": {"apns-priority": "5"}}},
        {"content": Content(title="T"), "priority": Priority.NORMAL, "collapse_key": "k"},
        {"content": Content(title="T"), "ttl": 60},
        {"content": Content(badge=3)},  # silent: a background push
    ]
    for index, variant in enumerate(variants, start=10):
        result.append((Message(push_id=uuid.uuid4(), **variant), device(index)))
    return result


def test_every_request_is_what_a_fresh_provider_renders(
    credentials: ApnsTokenCredentials,
) -> None:
    clock = FakeClock()
    shared = fresh(credentials, clock)
    cases = pushes()
    for _ in range(2):  # the second round is served from the cache
        for message, recipient in cases:
            expected = fresh(credentials, clock).render(message, recipient)
            assert shared.render(message, recipient) == expected
        clock.advance(90)


def test_one_campaign_renders_its_payload_once_per_locale(
    credentials: ApnsTokenCredentials,
) -> None:
    provider = fresh(credentials, FakeClock())
    bodies = set()
    for index in range(300):
        locale = ("fr-FR", "de", None)[index % 3]
        message = Message(CONTENT.for_locale(locale), uuid.uuid4(), ttl=3600)
        request = provider.render(message, device(index, locale))
        bodies.add(id(request.body))
        headers = dict(request.headers)
        assert headers["apns-id"] == str(message.push_id)
        assert json.loads(request.body)["order_id"] == 1234
    assert len(bodies) == 2  # French, and the default for "de" and no locale


def test_expiration_follows_the_clock_while_the_payload_is_reused(
    credentials: ApnsTokenCredentials,
) -> None:
    clock = FakeClock()
    provider = fresh(credentials, clock)
    message = Message(Content(title="T"), uuid.uuid4(), ttl=60)
    first = dict(provider.render(message, device(1)).headers)["apns-expiration"]
    clock.advance(timedelta(minutes=5).total_seconds())
    later = dict(provider.render(message, device(2)).headers)["apns-expiration"]
    assert int(later) - int(first) == 300
