import asyncio
import json
import secrets
from datetime import timedelta

import sqlalchemy as sa

from clarion.delivery.planner import plan_chunk
from clarion.emulators.recording import Fault
from clarion.model.platform import Platform
from clarion.store.schema_pipeline import notifications
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


def _apns(**fields: object) -> dict[str, object]:
    return {"platform": "apns", "token": secrets.token_hex(32), "consent": GRANTED, **fields}


async def test_same_idempotency_key_from_100_concurrent_requests_creates_one_notification(
    pipeline: Pipeline,
) -> None:
    await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    body = {"audience": {"users": ["u-1"]}, "content": {"title": "Once"}}
    answers = await asyncio.gather(
        *(pipeline.send(body, **{"Idempotency-Key": "order-1234"}) for _ in range(100))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    async with pipeline.database.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(notifications))).one()
    assert count[0] == 1
    different = await pipeline.send({**body, "ttl": 60}, **{"Idempotency-Key": "order-1234"})
    assert different.status_code == 422
    assert different.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_revocation_after_planning_stops_the_push(pipeline: Pipeline) -> None:
    device_id, _ = await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    accepted = await pipeline.send(
        {"audience": {"devices": [device_id]}, "content": {"title": "Hi"}}
    )
    notification_id = accepted.json()["id"]
    planned = await plan_chunk(
        pipeline.database, pipeline.app.id, notification_id, pipeline.clock.now()
    )
    assert planned.queued == 1
    revoked = await pipeline.api.put(
        f"/v1/apps/{pipeline.app.id}/devices/{device_id}/consent",
        json={"status": "revoked", "source": "settings"},
        headers=pipeline.app.client(),
    )
    assert revoked.status_code == 200
    await pipeline.worker.run_until_idle()
    assert pipeline.webpush.state.requests == []
    [delivery] = await pipeline.deliveries(notification_id)
    assert (delivery["status"], delivery["reason"]) == ("suppressed", "no_consent")
    assert (await pipeline.status(notification_id))["status"] == "completed"


async def test_outage_retries_after_retry_after_and_spares_other_providers(
    pipeline: Pipeline,
) -> None:
    _, subscription = await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    await pipeline.register(_apns(user_id="u-1"))
    pipeline.webpush.state.faults.set_all(Fault(status=503, headers={"Retry-After": "120"}))
    accepted = await pipeline.send({"audience": {"users": ["u-1"]}, "content": {"title": "Hi"}})
    notification_id = accepted.json()["id"]
    await pipeline.worker.run_until_idle()
    stats = (await pipeline.status(notification_id))["stats"]
    assert (stats["sent"], stats["queued"], stats["failed"]) == (1, 1, {})
    attempts = len(pipeline.webpush.state.requests)
    assert attempts == 1

    pipeline.clock.advance(119)
    await pipeline.worker.run_until_idle()
    assert len(pipeline.webpush.state.requests) == attempts  # never before Retry-After

    pipeline.webpush.state.faults.clear()
    pipeline.clock.advance(15 * 60)
    await pipeline.worker.run_until_idle()
    status = await pipeline.status(notification_id)
    assert status["status"] == "completed"
    assert status["stats"]["sent"] == 2
    assert len(pipeline.webpush.received(subscription)) == 1
    webpush = [d for d in await pipeline.deliveries(notification_id) if d["platform"] == "webpush"]
    assert webpush[0]["attempts"] == 2


async def test_outage_longer_than_ttl_expires_instead_of_failing(pipeline: Pipeline) -> None:
    await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    pipeline.webpush.state.faults.set_all(Fault(status=503, headers={"Retry-After": "600"}))
    accepted = await pipeline.send(
        {"audience": {"users": ["u-1"]}, "content": {"title": "Soon stale"}, "ttl": 300}
    )
    await pipeline.worker.run_until_idle()
    status = await pipeline.status(accepted.json()["id"])
    assert status["stats"]["expired"] == 1
    assert status["stats"]["failed"] == {}
    assert status["status"] == "completed"


async def test_dead_subscription_fails_once_and_deactivates_the_device(
    pipeline: Pipeline,
) -> None:
    device_id, subscription = await pipeline.register_webpush(consent=GRANTED)
    pipeline.webpush.unsubscribe(subscription)
    accepted = await pipeline.send(
        {"audience": {"devices": [device_id]}, "content": {"title": "x"}}
    )
    await pipeline.worker.run_until_idle()
    status = await pipeline.status(accepted.json()["id"])
    assert status["stats"]["failed"] == {"invalid_token": 1}
    device = await pipeline.api.get(
        f"/v1/apps/{pipeline.app.id}/devices/{device_id}", headers=pipeline.app.server()
    )
    assert device.json()["active"] is False
    assert device.json()["deactivated_reason"].startswith("invalid_token")
    again = await pipeline.send({"audience": {"devices": [device_id]}, "content": {"title": "y"}})
    await pipeline.worker.run_until_idle()
    assert (await pipeline.status(again.json()["id"]))["stats"]["suppressed"] == {
        "inactive_device": 1
    }
    assert len(pipeline.webpush.state.requests) == 1


async def test_apns_410_before_a_reregistration_keeps_the_device(pipeline: Pipeline) -> None:
    body = _apns()
    device_id = await pipeline.register(body)
    pipeline.apns.unregister(str(body["token"]), at=pipeline.clock.now())
    pipeline.clock.advance(60)
    await pipeline.register(body)  # the app registered the token again after Apple's 410 date
    accepted = await pipeline.send(
        {"audience": {"devices": [device_id]}, "content": {"title": "x"}}
    )
    await pipeline.worker.run_until_idle()
    status = await pipeline.status(accepted.json()["id"])
    assert status["stats"]["failed"] == {"invalid_token": 1}
    device = await pipeline.api.get(
        f"/v1/apps/{pipeline.app.id}/devices/{device_id}", headers=pipeline.app.server()
    )
    assert device.json()["active"] is True


async def test_scheduled_notification_waits_and_can_be_cancelled(pipeline: Pipeline) -> None:
    await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    later = (pipeline.clock.now() + timedelta(hours=2)).isoformat()
    accepted = await pipeline.send(
        {
            "audience": {"users": ["u-1"]},
            "content": {"title": "Later"},
            "schedule": {"send_at": later},
        }
    )
    assert accepted.json()["status"] == "scheduled"
    await pipeline.worker.run_until_idle()
    assert pipeline.webpush.state.requests == []
    cancel = await pipeline.api.post(
        f"/v1/apps/{pipeline.app.id}/notifications/{accepted.json()['id']}/cancel",
        headers=pipeline.app.server(),
    )
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "cancelled"
    pipeline.clock.advance(3 * 3600)
    await pipeline.worker.run_until_idle()
    assert pipeline.webpush.state.requests == []
    again = await pipeline.api.post(
        f"/v1/apps/{pipeline.app.id}/notifications/{accepted.json()['id']}/cancel",
        headers=pipeline.app.server(),
    )
    assert again.status_code == 409


async def test_scheduled_notification_goes_at_its_time(pipeline: Pipeline) -> None:
    _, subscription = await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    later = (pipeline.clock.now() + timedelta(minutes=30)).isoformat()
    accepted = await pipeline.send(
        {
            "audience": {"users": ["u-1"]},
            "content": {"title": "Now"},
            "schedule": {"send_at": later},
        }
    )
    pipeline.clock.advance(29 * 60)
    await pipeline.worker.run_until_idle()
    assert pipeline.webpush.received(subscription) == []
    pipeline.clock.advance(61)
    await pipeline.worker.run_until_idle()
    assert len(pipeline.webpush.received(subscription)) == 1
    assert (await pipeline.status(accepted.json()["id"]))["status"] == "completed"


async def test_failed_credential_pauses_instead_of_failing_then_resumes(
    pipeline: Pipeline,
) -> None:
    await pipeline.register(_apns(user_id="u-1"))
    pipeline.apns.state.faults.set_all(
        Fault(status=403, body={"reason": "InvalidProviderToken"}, times=1)
    )
    accepted = await pipeline.send({"audience": {"users": ["u-1"]}, "content": {"title": "x"}})
    notification_id = accepted.json()["id"]
    await pipeline.worker.run_until_idle()
    status = await pipeline.status(notification_id)
    assert status["stats"]["queued"] == 1
    assert status["stats"]["failed"] == {}
    assert pipeline.providers.paused
    pipeline.clock.advance(60)
    await pipeline.worker.run_until_idle()
    assert (await pipeline.status(notification_id))["stats"]["queued"] == 1
    pipeline.providers.resume(pipeline.app.id, Platform.APNS)
    pipeline.clock.advance(60)
    await pipeline.worker.run_until_idle()
    status = await pipeline.status(notification_id)
    assert status["stats"]["sent"] == 1
    assert status["status"] == "completed"


async def test_opened_event_counts_in_the_funnel_and_explain_says_why(
    pipeline: Pipeline,
) -> None:
    device_id, _ = await pipeline.register_webpush(consent=GRANTED)
    quiet_id, _ = await pipeline.register_webpush()
    accepted = await pipeline.send(
        {"audience": {"devices": [device_id, quiet_id]}, "content": {"title": "x"}}
    )
    notification_id = accepted.json()["id"]
    await pipeline.worker.run_until_idle()
    event = await pipeline.api.post(
        f"/v1/apps/{pipeline.app.id}/events",
        json={"device_id": device_id, "notification_id": notification_id, "type": "opened"},
        headers=pipeline.app.client(),
    )
    assert event.status_code == 204
    assert (await pipeline.status(notification_id))["stats"]["opened"] == 1
    one = await pipeline.api.get(
        f"/v1/apps/{pipeline.app.id}/notifications/{notification_id}/deliveries/{quiet_id}",
        headers=pipeline.app.server(),
    )
    assert "consent" in one.json()["explain"]
    unknown = await pipeline.api.post(
        f"/v1/apps/{pipeline.app.id}/events",
        json={"device_id": "dev_nope", "notification_id": notification_id, "type": "opened"},
        headers=pipeline.app.client(),
    )
    assert unknown.status_code == 404


async def test_invalid_notifications_are_422_naming_each_field(pipeline: Pipeline) -> None:
    answer = await pipeline.send(
        {
            "audience": {"users": [], "topic": "x"},
            "content": {"title": 5, "badge": -1},
            "ttl": -5,
            "priority": "urgent",
            "schedule": {"send_at": "tomorrow"},
            "category": "unknown",
            "apns": "nope",
        }
    )
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.json()["errors"]}
    assert {
        "audience",
        "content.title",
        "content.badge",
        "ttl",
        "priority",
        "schedule.send_at",
        "apns",
    } <= fields
    unknown_category = await pipeline.send(
        {"audience": {"all": True}, "content": {"title": "x"}, "category": "promo"}
    )
    assert unknown_category.json()["errors"][0]["field"] == "category"
    async with pipeline.database.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(notifications))).one()
    assert count[0] == 0


async def test_deliveries_page_with_a_cursor_and_filter(pipeline: Pipeline) -> None:
    for _ in range(5):
        await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    await pipeline.register_webpush(user_id="u-1")
    accepted = await pipeline.send({"audience": {"users": ["u-1"]}, "content": {"title": "x"}})
    notification_id = accepted.json()["id"]
    await pipeline.worker.run_until_idle()
    url = f"/v1/apps/{pipeline.app.id}/notifications/{notification_id}/deliveries"
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await pipeline.api.get(url, params=params, headers=pipeline.app.server())).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 6
    sent = await pipeline.deliveries(notification_id, status="sent")
    assert len(sent) == 5


async def test_metrics_report_outcomes_latency_and_queue(pipeline: Pipeline) -> None:
    await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    pipeline.webpush.state.faults.set_all(Fault(status=503, headers={"Retry-After": "300"}))
    await pipeline.send({"audience": {"users": ["u-1"]}, "content": {"title": "x"}})
    await pipeline.worker.run_until_idle()
    pipeline.clock.advance(3600)  # the retry is now due and waiting
    text = (await pipeline.api.get("/metrics")).text
    assert 'clarion_deliveries_total{outcome="retry",provider="webpush"} 1.0' in text
    assert 'clarion_provider_latency_seconds_count{provider="webpush"} 1.0' in text
    assert "clarion_queue_due_jobs 1.0" in text
    assert "clarion_queue_oldest_due_age_seconds" in text
    assert "clarion_planned_devices_total 1.0" in text
