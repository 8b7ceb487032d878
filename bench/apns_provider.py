"""An `ApnsProvider` wired to the bench nginx: token auth, a realistic alert, 10% 410s.

Each recipient gets its own `Message`, as the sender builds them: its own
push id (so its own `apns-id`) and its own copy of the localized content
(`Content.for_locale` makes a new object), so the provider cannot tell from
identity alone that one push goes to many devices.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.model.content import Content, LocalizedText
from clarion.model.message import Message, Recipient
from clarion.model.platform import Platform
from clarion.providers.apns import ApnsProvider, ApnsTokenCredentials
from clarion.providers.base import Transport

ERROR_SHARE = 0.1


def provider_sender(
    transport: Transport, url: str, error_share: float = ERROR_SHARE
) -> Callable[[int], Awaitable[str]]:
    """`send(i)` pushes to the i-th recipient and returns the outcome's class name."""
    provider, pushes = provider_pushes(transport, url, error_share)

    async def send(index: int) -> str:
        message, recipient = pushes[index % len(pushes)]
        outcome = await provider.send(message, recipient)
        return type(outcome).__name__

    return send


def batch_sender(
    transport: Transport, url: str, error_share: float = ERROR_SHARE, size: int = 500
) -> Callable[[int], Awaitable[list[str]]]:
    """`send(i)` pushes the i-th batch of `size` through `send_batch`, as the sender does."""
    provider, pushes = provider_pushes(transport, url, error_share)

    async def send(index: int) -> list[str]:
        start = (index * size) % len(pushes)
        batch = (pushes * 2)[start : start + size]
        return [type(outcome).__name__ for outcome in await provider.send_batch(batch)]

    return send


def provider_pushes(
    transport: Transport, url: str, error_share: float
) -> tuple[ApnsProvider, list[tuple[Message, Recipient]]]:
    """The provider and 1,000 pushes, every 1/error_share-th to a token nginx answers 410."""
    from bench.transport import token

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = ApnsTokenCredentials("ABC123DEFG", "TEAM123456", pem, "com.example.app")
    provider = ApnsProvider(credentials, transport, endpoint=url)
    content = Content(
        title="Your order shipped",
        body="Arrives Thursday",
        badge=1,
        sound="default",
        data={"order_id": "1234"},
        localized={"fr": LocalizedText(title="Votre commande est partie")},
    )
    locales = ("en-US", "fr-FR", None)
    pushes = [
        (
            Message(content=content.for_locale(locales[i % 3]), push_id=uuid.uuid4(), ttl=3600),
            Recipient(f"dev-{i}", Platform.APNS, token(i, error_share), locales[i % 3]),
        )
        for i in range(1000)
    ]

    return provider, pushes
