"""How the sender hands a batch to a provider: push ids, the pooled path, a provider's bugs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from clarion.delivery.sender import PUSH_NAMESPACE, _needs, push_id
from clarion.model.content import Content
from clarion.model.message import Message, Recipient
from clarion.model.notification import NotificationSpec, parse_notification
from clarion.model.outcome import Outcome, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import HttpRequest, HttpResponse, Provider
from clarion.providers.batch import POOL_WIDTH, send_all

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_push_id_is_the_uuid5_of_notification_and_device() -> None:
    for notification_id, device_id in [("ntf_1", "dev_1"), ("ntf_é", "dev_" + "x" * 40)]:
        expected = uuid.uuid5(PUSH_NAMESPACE, f"{notification_id}/{device_id}")
        assert push_id(notification_id, device_id) == expected
        assert str(push_id(notification_id, device_id)) == str(expected)
    assert push_id("ntf_1", "dev_1") != push_id("ntf_1", "dev_2")


class _Recorder(Provider):
    """Answers after a yield; counts how many sends are in flight at once; one device breaks it."""

    platform = Platform.FCM

    def __init__(self) -> None:
        super().__init__(transport=None)  # type: ignore[arg-type]
        self.in_flight = 0
        self.most = 0

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        raise NotImplementedError

    async def authorize(self, request: HttpRequest) -> HttpRequest:
        return request

    def classify(self, response: HttpResponse) -> Outcome:
        raise NotImplementedError

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        if recipient.device_id == "dev-bug":
            raise KeyError("bug")
        return Sent(recipient.device_id)


def _pushes(device_ids: list[str]) -> list[tuple[Message, Recipient]]:
    content = Content(title="Hi")
    return [
        (Message(content, push_id("ntf", d)), Recipient(d, Platform.FCM, "token"))
        for d in device_ids
    ]


async def test_a_provider_without_send_batch_gets_a_bounded_pool_and_outcomes_in_order() -> None:
    provider = _Recorder()
    devices = [f"dev-{i}" for i in range(300)]
    outcomes = await send_all(provider, _pushes(devices))
    assert outcomes == [Sent(d) for d in devices]
    assert provider.most == POOL_WIDTH


async def test_a_provider_bug_retries_only_the_push_it_broke() -> None:
    outcomes = await send_all(_Recorder(), _pushes(["dev-1", "dev-bug", "dev-3"]))
    assert outcomes == [Sent("dev-1"), Retry("provider_error: KeyError"), Sent("dev-3")]


async def test_the_provider_limit_bounds_pushes_in_flight_across_batches() -> None:
    provider = _Recorder()
    limit = asyncio.Semaphore(10)
    batches = [_pushes([f"dev-{b}-{i}" for i in range(100)]) for b in range(3)]
    results = await asyncio.gather(*(send_all(provider, p, limit=limit) for p in batches))
    assert [len(r) for r in results] == [100, 100, 100]
    assert provider.most == 10


class _BrokenBatch(_Recorder):
    async def send_batch(self, pushes: list[tuple[Message, Recipient]]) -> list[Outcome]:
        raise RuntimeError("bug")


async def test_a_batch_provider_that_raises_gets_every_push_retried() -> None:
    outcomes = await send_all(_BrokenBatch(), _pushes(["dev-1", "dev-2"]))
    assert outcomes == [Retry("provider_error: RuntimeError")] * 2


def test_a_batch_reads_push_keys_for_web_push_and_tags_for_templates_only() -> None:
    def spec(content: dict[str, object]) -> NotificationSpec:
        return parse_notification({"audience": {"all": True}, "content": content}, NOW)

    plain = spec({"title": "Sale", "body": "Now"})
    assert _needs(plain, Platform.APNS) == (False, False)
    assert _needs(plain, Platform.WEBPUSH) == (True, False)
    assert _needs(spec({"title": "Hi {{ tag.name }}"}), Platform.APNS) == (False, True)
    localized = spec({"title": "Hi", "localized": {"fr": {"body": "Salut {{ user_id }}"}}})
    assert _needs(localized, Platform.FCM) == (False, True)
