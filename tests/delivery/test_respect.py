"""The recipient's clock and choices, end to end: local time, quiet hours, opt-outs, expiry."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.delivery.conftest import Pipeline

GRANTED = {"status": "granted", "source": "os_prompt"}
# The fake clock starts at 2026-01-01 00:00 UTC: 01:00 in Paris, 09:00 in Tokyo,
# 19:00 (the day before) in New York.


async def _configure(pipeline: Pipeline, **settings: object) -> None:
    answer = await pipeline.api.patch(
        f"/v1/apps/{pipeline.app.id}", json=settings, headers=pipeline.app.server()
    )
    assert answer.status_code == 200, answer.text


def _local(moment: str, zone: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))


async def test_local_time_campaign_reaches_each_zone_at_its_nine_oclock(pipeline: Pipeline) -> None:
    zones = ["Europe/Paris", "Asia/Tokyo", "America/New_York", "Australia/Lord_Howe"]
    subscriptions = {}
    for zone in zones:
        device_id, subscription = await pipeline.register_webpush(
            user_id=f"u-{zone}", timezone=zone, consent=GRANTED
        )
        subscriptions[device_id] = (zone, subscription)
    accepted = await pipeline.send(
        {
            "audience": {"all": True},
            "content": {"title": "Good morning"},
            "schedule": {"local_time": "09:00"},
        }
    )
    notification_id = accepted.json()["id"]
    await pipeline.worker.run_until_idle()
    planned = {d["device_id"]: d for d in await pipeline.deliveries(notification_id)}
    for device_id, (zone, _) in subscriptions.items():
        local = _local(planned[device_id]["due_at"], zone)
        assert (local.hour, local.minute) == (9, 0), (zone, local)
    sent_at: dict[str, datetime] = {}
    for _ in range(30 * 24):  # walk the fake clock through the next 30 hours
        pipeline.clock.advance(150)
        await pipeline.worker.run_until_idle()
        for device_id, (_, subscription) in subscriptions.items():
            if device_id not in sent_at and pipeline.webpush.received(subscription):
                sent_at[device_id] = pipeline.clock.now()
    assert set(sent_at) == set(subscriptions)
    for device_id, moment in sent_at.items():
        due = datetime.fromisoformat(planned[device_id]["due_at"].replace("Z", "+00:00"))
        assert timedelta(0) <= moment - due <= timedelta(seconds=210)
    assert (await pipeline.status(notification_id))["status"] == "completed"


async def test_quiet_hours_defer_to_the_morning_or_drop(pipeline: Pipeline) -> None:
    await _configure(pipeline, quiet_hours={"start": "22:00", "end": "08:00"})
    sleeper, subscription = await pipeline.register_webpush(
        user_id="sleeper", timezone="Europe/Paris", consent=GRANTED
    )
    _, awake_subscription = await pipeline.register_webpush(
        user_id="awake", timezone="Asia/Tokyo", consent=GRANTED
    )
    deferred = await pipeline.send({"audience": {"all": True}, "content": {"title": "News"}})
    dropped = await pipeline.send(
        {
            "audience": {"users": ["sleeper"]},
            "content": {"title": "Flash"},
            "schedule": {"quiet_hours": "drop"},
        }
    )
    await pipeline.worker.run_until_idle()
    assert len(pipeline.webpush.received(awake_subscription)) == 1
    assert pipeline.webpush.received(subscription) == []
    [late] = [
        d for d in await pipeline.deliveries(deferred.json()["id"]) if d["device_id"] == sleeper
    ]
    assert late["status"] == "scheduled"
    assert _local(late["due_at"], "Europe/Paris").hour == 8
    [gone] = await pipeline.deliveries(dropped.json()["id"])
    assert (gone["status"], gone["reason"]) == ("suppressed", "quiet_hours")
    explain = await pipeline.api.get(
        f"/v1/apps/{pipeline.app.id}/notifications/{deferred.json()['id']}/deliveries/{sleeper}",
        headers=pipeline.app.server(),
    )
    assert "Scheduled" in explain.json()["explain"]
    pipeline.clock.advance(6 * 3600 + 59 * 60)  # 07:59 in Paris
    await pipeline.worker.run_until_idle()
    assert pipeline.webpush.received(subscription) == []
    pipeline.clock.advance(120)
    await pipeline.worker.run_until_idle()
    assert [json.loads(p)["title"] for p in pipeline.webpush.received(subscription)] == ["News"]


async def test_user_quiet_hours_override_and_time_sensitive_may_ignore(pipeline: Pipeline) -> None:
    await _configure(
        pipeline,
        quiet_hours={"start": "22:00", "end": "08:00"},
        categories=[{"name": "security", "time_sensitive": True}, {"name": "promo"}],
    )
    _, night_owl = await pipeline.register_webpush(
        user_id="owl", timezone="Europe/Paris", consent=GRANTED
    )
    await pipeline.api.put(
        f"/v1/apps/{pipeline.app.id}/users/owl/preferences",
        json={"quiet_hours": None},
        headers=pipeline.app.client(),
    )
    _, sleeper = await pipeline.register_webpush(
        user_id="sleeper", timezone="Europe/Paris", consent=GRANTED
    )
    refused = await pipeline.send(
        {
            "audience": {"all": True},
            "content": {"title": "x"},
            "category": "promo",
            "schedule": {"quiet_hours": "ignore"},
        }
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "schedule.quiet_hours"
    await pipeline.send(
        {"audience": {"all": True}, "content": {"title": "Sale"}, "category": "promo"}
    )
    await pipeline.send(
        {
            "audience": {"all": True},
            "content": {"title": "New login"},
            "category": "security",
            "schedule": {"quiet_hours": "ignore"},
        }
    )
    await pipeline.worker.run_until_idle()
    owl_titles = sorted(json.loads(p)["title"] for p in pipeline.webpush.received(night_owl))
    assert owl_titles == ["New login", "Sale"]
    assert [json.loads(p)["title"] for p in pipeline.webpush.received(sleeper)] == ["New login"]


async def test_category_opt_outs_and_defaults_are_respected_even_after_planning(
    pipeline: Pipeline,
) -> None:
    await _configure(
        pipeline,
        categories=[{"name": "marketing", "default_opt_in": False}, {"name": "orders"}],
    )
    _, keen = await pipeline.register_webpush(user_id="keen", consent=GRANTED)
    _, quiet = await pipeline.register_webpush(user_id="quiet", consent=GRANTED)
    await pipeline.api.put(
        f"/v1/apps/{pipeline.app.id}/users/keen/preferences",
        json={"categories": {"marketing": True}},
        headers=pipeline.app.client(),
    )
    marketing = await pipeline.send(
        {"audience": {"all": True}, "content": {"title": "Promo"}, "category": "marketing"}
    )
    later = (pipeline.clock.now() + timedelta(hours=1)).isoformat()
    orders = await pipeline.send(
        {
            "audience": {"all": True},
            "content": {"title": "Shipped"},
            "category": "orders",
            "schedule": {"send_at": later},
        }
    )
    await pipeline.worker.run_until_idle()
    stats = (await pipeline.status(marketing.json()["id"]))["stats"]
    assert (stats["sent"], stats["suppressed"]) == (1, {"category_opt_out": 1})
    pipeline.clock.advance(30 * 60)
    await pipeline.worker.run_until_idle()  # orders is planned at its send_at, not yet
    await pipeline.api.put(
        f"/v1/apps/{pipeline.app.id}/users/quiet/preferences",
        json={"categories": {"orders": False}},
        headers=pipeline.app.client(),
    )
    pipeline.clock.advance(31 * 60)
    await pipeline.worker.run_until_idle()
    stats = (await pipeline.status(orders.json()["id"]))["stats"]
    assert (stats["sent"], stats["suppressed"]) == (1, {"category_opt_out": 1})
    assert [json.loads(p)["title"] for p in pipeline.webpush.received(quiet)] == []
    assert len(pipeline.webpush.received(keen)) == 2


async def test_a_delivery_deferred_past_its_ttl_expires_instead_of_arriving_late(
    pipeline: Pipeline,
) -> None:
    await _configure(pipeline, quiet_hours={"start": "22:00", "end": "08:00"})
    _, subscription = await pipeline.register_webpush(
        user_id="sleeper", timezone="Europe/Paris", consent=GRANTED
    )
    accepted = await pipeline.send(
        {"audience": {"all": True}, "content": {"title": "Stale soon"}, "ttl": 3600}
    )
    await pipeline.worker.run_until_idle()
    pipeline.clock.advance(12 * 3600)
    await pipeline.worker.run_until_idle()
    assert pipeline.webpush.received(subscription) == []
    status = await pipeline.status(accepted.json()["id"])
    assert status["stats"]["expired"] == 1
    assert status["status"] == "completed"


async def test_throttle_spreads_a_campaign_per_minute(pipeline: Pipeline) -> None:
    subscriptions = [
        (await pipeline.register_webpush(user_id=f"u-{i}", consent=GRANTED))[1] for i in range(7)
    ]
    accepted = await pipeline.send(
        {
            "audience": {"all": True},
            "content": {"title": "Slowly"},
            "schedule": {"throttle_per_minute": 3},
        }
    )
    sent_per_minute = []
    for _ in range(4):
        await pipeline.worker.run_until_idle()
        sent_per_minute.append(sum(len(pipeline.webpush.received(s)) for s in subscriptions))
        pipeline.clock.advance(60)
    assert sent_per_minute == [3, 6, 7, 7]
    assert (await pipeline.status(accepted.json()["id"]))["status"] == "completed"


async def test_frequency_caps_count_what_was_sent_per_user(pipeline: Pipeline) -> None:
    await _configure(
        pipeline,
        categories=[{"name": "marketing"}, {"name": "orders", "counts_toward_caps": False}],
        caps=[{"max": 2, "per": "day", "category": "marketing"}],
    )
    for _ in range(2):  # one user, two devices: one notification counts once
        await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    sent = []
    for index in range(3):
        accepted = await pipeline.send(
            {
                "audience": {"users": ["u-1"]},
                "content": {"title": f"Promo {index}"},
                "category": "marketing",
            }
        )
        await pipeline.worker.run_until_idle()
        sent.append((await pipeline.status(accepted.json()["id"]))["stats"])
        pipeline.clock.advance(60)
    assert [s["sent"] for s in sent] == [2, 2, 0]
    assert sent[2]["suppressed"] == {"frequency_cap": 2}
    orders = await pipeline.send(
        {"audience": {"users": ["u-1"]}, "content": {"title": "Shipped"}, "category": "orders"}
    )
    await pipeline.worker.run_until_idle()
    assert (await pipeline.status(orders.json()["id"]))["stats"]["sent"] == 2
    await pipeline.api.put(
        f"/v1/apps/{pipeline.app.id}/users/u-1/preferences",
        json={"caps": [{"max": 5, "per": "day", "category": "marketing"}]},
        headers=pipeline.app.client(),
    )
    again = await pipeline.send(
        {"audience": {"users": ["u-1"]}, "content": {"title": "More"}, "category": "marketing"}
    )
    await pipeline.worker.run_until_idle()
    assert (await pipeline.status(again.json()["id"]))["stats"]["sent"] == 2


async def test_two_workers_racing_cannot_both_take_the_last_cap_slot(pipeline: Pipeline) -> None:
    from clarion.delivery.worker import Worker

    await _configure(pipeline, caps=[{"max": 1, "per": "day"}])
    _, subscription = await pipeline.register_webpush(user_id="u-1", consent=GRANTED)
    for index in range(4):
        await pipeline.send({"audience": {"users": ["u-1"]}, "content": {"title": f"N{index}"}})
    rival = Worker(pipeline.database, pipeline.providers, pipeline.clock, poll_interval=0.01)
    await asyncio.gather(pipeline.worker.run_until_idle(), rival.run_until_idle())
    await pipeline.worker.run_until_idle()
    assert len(pipeline.webpush.received(subscription)) == 1
