"""A chunk decided by situation gives every device what deciding it alone would."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any

from clarion.delivery.chunk_plan import STATUS, Throttle, job_due, plan_groups, send_jobs
from clarion.delivery.rules import NotificationRules, RecipientFacts
from clarion.model.app import App, Category
from clarion.model.notification import parse_notification
from clarion.model.preferences import QuietHours, UserPreferences
from clarion.store.plan_writes import DeliveryGroup

NOW = datetime(2026, 1, 15, 23, 30, 17, tzinfo=UTC)
APP = App(
    id="app_1",
    name="News",
    default_timezone="America/New_York",
    quiet_hours=QuietHours(time(22), time(8)),
    caps=(),
    categories=(Category("news"), Category("promo", default_opt_in=False)),
    subject_salt=b"s" * 32,
    created_at=NOW,
    updated_at=NOW,
)
ZONES = [None, "Europe/London", "Asia/Tokyo", "America/Los_Angeles", "Australia/Sydney", "Nope/X"]
CONSENT = ["granted", "granted", "provisional", "denied", "revoked", "granted", "granted"]
PLATFORMS = ["apns", "fcm", "webpush"]
PREFS = {
    "user-0": UserPreferences({"news": False}, None, False, None, None),
    "user-3": UserPreferences({}, None, True, "Asia/Tokyo", None),
    "user-6": UserPreferences({"news": True}, QuietHours(time(23), time(23, 45)), True, None, None),
    "user-9": UserPreferences({}, None, False, "Pacific/Auckland", None),
}


def _page(count: int) -> list[tuple[Any, ...]]:
    return [
        (
            f"dev_{index:05d}",
            PLATFORMS[index % 3],
            CONSENT[index % 7],
            index % 11 != 0,
            ZONES[index % 6],
            f"user-{index % 13}" if index % 4 else None,
        )
        for index in range(count)
    ]


def _alone(rules: NotificationRules, row: tuple[Any, ...], now: datetime) -> Any:
    device_id, _platform, consent, active, zone, user = row
    facts = RecipientFacts(device_id, consent, active, zone, user, PREFS.get(user or ""))
    return rules.decide(facts, now)


def _flat(groups: list[DeliveryGroup]) -> dict[str, tuple[Any, ...]]:
    flat = {}
    for group in groups:
        assert list(group.device_ids) == sorted(group.device_ids)
        for device_id in group.device_ids:
            assert device_id not in flat
            flat[device_id] = (group.platform, group.status, group.reason, group.due_at)
    return flat


def _spec(**schedule: Any) -> Any:
    body = {"audience": {"all": True}, "content": {"title": "Hi"}, "category": "news"}
    return parse_notification({**body, "schedule": schedule or None}, NOW)


def test_each_device_of_a_mixed_chunk_gets_the_decision_it_would_get_alone() -> None:
    spec = _spec()
    page = _page(600)
    groups = plan_groups(NotificationRules(APP, spec), page, PREFS, NOW, Throttle(spec, None))
    alone = NotificationRules(APP, spec)
    expected = {}
    for row in page:
        decision = _alone(alone, row, NOW)
        expected[row[0]] = (row[1], STATUS[decision.status].value, decision.reason, decision.due_at)
    assert _flat(groups) == expected
    statuses = {value[1:3] for value in expected.values()}
    assert {("queued", None), ("scheduled", None), ("suppressed", "no_consent")} <= statuses
    assert {("suppressed", "category_opt_out"), ("suppressed", "inactive_device")} <= statuses
    assert len(groups) < 60  # devices travel in a few groups, not one each


def test_a_throttled_chunk_fills_each_wave_in_device_order() -> None:
    spec = _spec(throttle_per_minute=7)
    page = _page(300)
    throttle = Throttle(spec, None)
    groups = plan_groups(NotificationRules(APP, spec), page, PREFS, NOW, throttle)
    alone, reference = NotificationRules(APP, spec), Throttle(spec, None)
    expected = {}
    for row in page:
        decision = reference.spread(_alone(alone, row, NOW), NOW)
        expected[row[0]] = (row[1], STATUS[decision.status].value, decision.reason, decision.due_at)
    assert _flat(groups) == expected
    assert throttle.state == reference.state
    soon = NOW + timedelta(hours=1)  # the wave sent now (user-6's quiet hours make another)
    immediate = [
        due for (*_, user), (*_, due) in zip(page, expected.values(), strict=True)
        if due and due < soon and user != "user-6"
    ]  # fmt: skip
    per_minute = Counter(due.replace(second=0, microsecond=0) for due in immediate)
    assert len(immediate) > 3 * 7
    assert max(per_minute.values()) <= 7


def test_send_jobs_carry_each_due_device_once_by_platform_and_minute() -> None:
    later = NOW + timedelta(hours=8, seconds=1)
    groups = [
        DeliveryGroup("apns", "queued", None, NOW, ["dev_3", "dev_1"]),
        DeliveryGroup("apns", "queued", None, NOW, ["dev_2"]),
        DeliveryGroup("apns", "scheduled", None, later, ["dev_4", "dev_5", "dev_6"]),
        DeliveryGroup("fcm", "queued", None, NOW, ["dev_7"]),
        DeliveryGroup("fcm", "suppressed", "no_consent", None, ["dev_8"]),
    ]
    jobs = send_jobs("app_1", "ntf_1", groups, NOW, batch=2)
    carried = [(job.payload["platform"], job.due_at, list(job.payload["devices"])) for job in jobs]
    assert carried == [
        ("apns", NOW, ["dev_1", "dev_2"]),
        ("apns", NOW, ["dev_3"]),
        ("apns", job_due(later, NOW), ["dev_4", "dev_5"]),
        ("apns", job_due(later, NOW), ["dev_6"]),
        ("fcm", NOW, ["dev_7"]),
    ]
    assert job_due(later, NOW) > later
    assert {job.payload["notification_id"] for job in jobs} == {"ntf_1"}
