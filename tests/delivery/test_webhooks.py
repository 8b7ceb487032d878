import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clarion.delivery.webhooks import WebhookSender
from clarion.emulators.server import EmulatorServer
from clarion.providers.httpx_transport import HttpxTransport
from clarion.store.sealing import Sealer
from clarion.store.webhooks import WEBHOOK_JOB
from tests.delivery.conftest import Pipeline

GRANTED = {"status": "granted", "source": "os_prompt"}


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.server = EmulatorServer(
            Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]), tls=True
        )

    async def hook(self, request: Request) -> Response:
        self.posts.append((dict(request.headers), await request.body()))
        return Response(status_code=self.status)


@pytest.fixture
async def receiver(pipeline: Pipeline) -> AsyncIterator[Receiver]:
    hooks = Receiver()
    async with hooks.server:
        transport = HttpxTransport(ca_file=hooks.server.ca_file)
        sender = WebhookSender(pipeline.database, Sealer(b"k" * 32), transport, pipeline.clock)
        pipeline.worker.add_handler(WEBHOOK_JOB, lambda job: sender.run(job, pipeline.worker.owner))
        yield hooks
        await transport.aclose()


async def _subscribe(pipeline: Pipeline, receiver: Receiver, events: list[str]) -> str:
    created = await pipeline.api.post(
        f"/v1/apps/{pipeline.app.id}/webhooks",
        json={"url": receiver.server.url + "/hook", "events": events},
        headers=pipeline.app.server(),
    )
    assert created.status_code == 201, created.text
    return str(created.json()["secret"])


def _verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    parts = dict(item.split("=", 1) for item in headers["clarion-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())


async def test_signed_events_for_failure_deactivation_and_completion(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    secret = await _subscribe(pipeline, receiver, ["*"])
    device_id, subscription = await pipeline.register_webpush(consent=GRANTED)
    pipeline.webpush.unsubscribe(subscription)
    accepted = await pipeline.send(
        {"audience": {"devices": [device_id]}, "content": {"title": "x"}}
    )
    await pipeline.worker.run_until_idle()
    types = []
    for headers, body in receiver.posts:
        _verify(secret, headers, body)
        types += [event["type"] for event in json.loads(body)["events"]]
    assert sorted(types) == [
        "delivery.failed",
        "device.deactivated",
        "notification.completed",
    ]
    completed = next(
        e
        for _, b in receiver.posts
        for e in json.loads(b)["events"]
        if e["type"] == "notification.completed"
    )
    assert completed["data"]["notification_id"] == accepted.json()["id"]
    assert completed["data"]["stats"]["failed"] == {"invalid_token": 1}


async def test_a_failing_receiver_gets_the_events_again_later(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    await _subscribe(pipeline, receiver, ["notification.completed"])
    await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    receiver.status = 500
    await pipeline.send({"audience": {"users": ["u-1"]}, "content": {"title": "x"}})
    await pipeline.worker.run_until_idle()
    assert len(receiver.posts) == 1
    receiver.status = 204
    pipeline.clock.advance(60)
    await pipeline.worker.run_until_idle()
    assert len(receiver.posts) == 2
    assert receiver.posts[0][1] == receiver.posts[1][1]


async def test_webhook_urls_and_event_names_are_checked(pipeline: Pipeline) -> None:
    for url, field in [
        ("http://hooks.example.com/x", "url"),
        ("https://169.254.169.254/latest", "url"),
        ("https://10.0.0.1/hook", "url"),
    ]:
        answer = await pipeline.api.post(
            f"/v1/apps/{pipeline.app.id}/webhooks",
            json={"url": url, "events": ["*"]},
            headers=pipeline.app.server(),
        )
        assert answer.status_code == 422, url
        assert answer.json()["errors"][0]["field"] == field
    bad_event = await pipeline.api.post(
        f"/v1/apps/{pipeline.app.id}/webhooks",
        json={"url": "https://127.0.0.1/x", "events": ["everything"]},
        headers=pipeline.app.server(),
    )
    assert bad_event.json()["errors"][0]["field"] == "events.0"


async def test_webhook_list_hides_the_secret_and_delete_stops_events(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    secret = await _subscribe(pipeline, receiver, ["*"])
    listed = await pipeline.api.get(
        f"/v1/apps/{pipeline.app.id}/webhooks", headers=pipeline.app.server()
    )
    assert secret not in listed.text
    [hook] = listed.json()["items"]
    deleted = await pipeline.api.delete(
        f"/v1/apps/{pipeline.app.id}/webhooks/{hook['id']}", headers=pipeline.app.server()
    )
    assert deleted.status_code == 204
    await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    await pipeline.send({"audience": {"users": ["u-1"]}, "content": {"title": "x"}})
    await pipeline.worker.run_until_idle()
    assert receiver.posts == []
