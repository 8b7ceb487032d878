import json

from tests.delivery.conftest import Pipeline

GRANTED = {"status": "granted", "source": "os_prompt"}


async def test_notification_reaches_each_consenting_device_and_the_funnel_adds_up(
    pipeline: Pipeline,
) -> None:
    granted = [await pipeline.register_webpush(user_id="u-1", consent=GRANTED) for _ in range(3)]
    denied, _ = await pipeline.register_webpush(user_id="u-1")
    accepted = await pipeline.send(
        {"audience": {"users": ["u-1"]}, "content": {"title": "Shipped", "body": "Thursday"}}
    )
    assert accepted.status_code == 202, accepted.text
    notification_id = accepted.json()["id"]
    await pipeline.worker.run_until_idle()

    status = await pipeline.status(notification_id)
    assert status["status"] == "completed"
    assert status["stats"]["targeted"] == 4
    assert status["stats"]["sent"] == 3
    assert status["stats"]["suppressed"] == {"no_consent": 1}
    for _, subscription in granted:
        [payload] = pipeline.webpush.received(subscription)
        assert json.loads(payload)["title"] == "Shipped"
    by_device = {d["device_id"]: d for d in await pipeline.deliveries(notification_id)}
    assert by_device[denied]["status"] == "suppressed"
    assert by_device[denied]["reason"] == "no_consent"
    assert by_device[granted[0][0]]["provider_message_id"]
