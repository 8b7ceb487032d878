"""ApnsProvider.send_batch: a batch of pushes, each one's outcome in order, on both transports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from clarion.clock import FakeClock
from clarion.emulators.apns import ApnsEmulator
from clarion.model.content import Content
from clarion.model.message import Message, Priority, Recipient
from clarion.model.outcome import InvalidToken, Rejected, Sent
from clarion.model.platform import Platform
from clarion.providers.apns import ApnsProvider, ApnsTokenCredentials
from clarion.providers.base import HttpRequest, HttpResponse
from clarion.providers.batch import send_all
from tests.providers.test_apns import (
    BUNDLE,
    KID,
    TEAM,
    TransportFactory,
    clock,
    credentials,
    distinct_jwts,
    emulator,
    provider,
    transport_factory,
)

__all__ = ["clock", "credentials", "emulator", "provider", "transport_factory"]


def _token(index: int) -> str:
    return f"{index:064x}"


async def test_a_batch_gets_each_push_its_own_outcome_in_order(
    provider: ApnsProvider, emulator: ApnsEmulator
) -> None:
    when = datetime(2025, 12, 24, 18, 30, tzinfo=UTC)
    emulator.unregister(_token(3), at=when)
    content = Content(title="Flash sale", body="20% off")
    pushes = [
        (Message(content, uuid.uuid4()), Recipient(f"dev-{i}", Platform.APNS, _token(i)))
        for i in range(6)
    ]
    pushes[1] = (pushes[1][0], Recipient("dev-1", Platform.APNS, "not hex"))
    pushes[4] = (Message(content, uuid.uuid4(), collapse_key="k" * 65), pushes[4][1])
    outcomes = await provider.send_batch(pushes)
    assert [type(o) for o in outcomes] == [Sent, InvalidToken, Sent, InvalidToken, Rejected, Sent]
    assert outcomes[3] == InvalidToken("Unregistered", since=when)
    sent_ids = {r.headers["apns-id"] for r in emulator.state.requests if r.status == 200}
    assert sent_ids == {str(pushes[i][0].push_id) for i in (0, 2, 5)}
    assert len(emulator.state.requests) == 4  # the malformed token and long collapse id never left


async def test_a_cold_token_connection_gets_one_push_before_the_rest_of_the_batch(
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
            pushes = [
                (
                    Message(Content(title="Hi"), uuid.uuid4()),
                    Recipient("d", Platform.APNS, _token(i)),
                )
                for i in range(100)
            ]
            outcomes = await send_all(provider, pushes)
        finally:
            await transport.aclose()
        refused = emulator.server.refused_streams
    assert [type(o) for o in outcomes] == [Sent] * 100
    assert refused == 0
    assert len(distinct_jwts(emulator)) == 1


class _Recording:
    """A transport with `request_all` that answers 200 to everything and keeps the requests."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    async def request(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return HttpResponse(200, {}, b"")

    async def request_all(self, requests: Sequence[HttpRequest]) -> list[HttpResponse]:
        self.requests.extend(requests)
        return [HttpResponse(200, {}, b"") for _ in requests]

    async def aclose(self) -> None:
        return None


async def test_a_batch_renders_each_request_as_a_single_push_would(
    credentials: ApnsTokenCredentials, clock: FakeClock
) -> None:
    """Headers and body rendered once per batch are, push by push, what `render` gives."""
    transport = _Recording()
    provider = ApnsProvider(credentials, transport, clock=clock, endpoint="https://apns.test")
    provider._warm = True  # no single-push warm-up: every push goes through `request_all`
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    english, french = Content(title="Sale", body="Now"), Content(title="Soldes", body="Vite")
    shapes = [
        {"content": english},
        {"content": french, "collapse_key": "c1"},
        {"content": english, "priority": Priority.NORMAL, "ttl": 60},
        {"content": english, "expires_at": expires, "overrides": {"aps": {"thread-id": "t"}}},
        {"content": french},
    ]
    pushes = [
        (
            Message(
                shape["content"], uuid.uuid4(), **{k: v for k, v in shape.items() if k != "content"}
            ),
            Recipient(f"dev-{i}", Platform.APNS, _token(i)),
        )
        for i, shape in enumerate(shapes * 3)
    ]
    outcomes = await provider.send_batch(pushes)
    assert [type(o) for o in outcomes] == [Sent] * len(pushes)
    jwt = ("authorization", provider.signer.header()) if provider.signer else None
    for (message, recipient), sent in zip(pushes, transport.requests, strict=True):
        alone = provider.render(message, recipient)
        assert sent.url == alone.url
        assert sent.body == alone.body
        assert sent.headers == (*alone.headers, jwt)
        assert dict(sent.headers)["apns-id"] == str(message.push_id)
