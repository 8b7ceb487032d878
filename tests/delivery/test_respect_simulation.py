"""A day in the life of 10,000 recipients: the respect rules hold at scale, end to end.

10,000 users (one APNs device each) over all ~600 IANA zone names, with a
mix of consent, time zones (the user's, the device's, a stale name, the
app's), quiet hours (the app's window, their own, wrapping midnight, none),
category opt-outs and frequency caps (the app's and their own) get a 09:00
local-time digest, a burst of two marketing pushes (one dropped in quiet
hours), a third six hours later and, for European devices, an order update
(a category that neither uses nor meets caps) at midnight in Paris on the
night its clocks skip 02:00-03:00. A fake clock walks 26 hours in 60-second
steps; two workers share the queue. What the APNs emulator received,
stamped with the fake clock, is checked against oracles: nobody without
consent or opted out gets a push, nobody gets one inside their quiet hours
(`in_quiet_hours` in `recipient_zone`), no cap is exceeded in any rolling
window, every delivery not sent says why and the reason is true, and every
push landed within 60 s of its planned `due_at` and, independently, of
09:00 local read off the wall clock (or its post time), or the end of the
quiet hours it was deferred to.

Sizing, for about a minute per backend on two cores: APNs through pycurl
to the raw HTTP/2 emulator (`apns_pipeline`: several times cheaper per push
than httpx to Hypercorn), about 24,000 pushes in ~300 send jobs, 1,560
steps; most preferences are bulk-inserted, and all are read back through
the store.
"""

from __future__ import annotations

import asyncio
import time
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from clarion.clock import FakeClock
from clarion.delivery.sender import push_id
from clarion.delivery.worker import Worker
from clarion.model.app import Category
from clarion.model.caps import CAP_WINDOWS, counts_toward_caps
from clarion.model.policy import find_category
from clarion.model.preferences import (
    FrequencyCap,
    parse_caps,
    parse_quiet_hours,
)
from clarion.model.schedule import in_quiet_hours
from tests.delivery.conftest import Pipeline
from tests.delivery.respect_population import (
    APP_CAPS,
    APP_QUIET,
    APP_ZONE,
    CATEGORIES,
    START,
    USERS,
    Person,
    Send,
    people,
    seed,
    sends,
)

pytestmark = pytest.mark.slow

STEP = timedelta(seconds=60)
WALK = timedelta(hours=26)
FINAL = {"sent", "suppressed"}  # nothing expires: the default ttl is 28 days


async def _all_deliveries(pipeline: Pipeline, notification_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        answer = await pipeline.api.get(
            f"/v1/apps/{pipeline.app.id}/notifications/{notification_id}/deliveries",
            params=params,
            headers=pipeline.app.server(),
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _minutes(start: datetime, end: datetime) -> Iterator[datetime]:
    moment = start
    while moment <= end:
        yield moment
        moment += STEP


def _nine_oclock(zone: zoneinfo.ZoneInfo) -> datetime:
    """The first minute at or after START when the wall clock in `zone` reaches 09:00.

    Found by reading the clock (every 15 minutes, then minute by minute
    where it passed 09:00), independently of the schedule module: 09:00
    itself, or the first instant after a gap that swallowed it, and for a
    repeated 09:00 its first occurrence.
    """

    def wall(moment: datetime) -> datetime:
        return moment.astimezone(zone).replace(tzinfo=None)

    def passes_nine(before: datetime, after: datetime) -> bool:
        nine = wall(after).replace(hour=9, minute=0, second=0, microsecond=0)
        return wall(before) < nine <= wall(after)

    coarse = timedelta(minutes=15)
    moment = START - STEP
    while moment <= START + WALK:
        if passes_nine(moment, moment + coarse):
            for minute in _minutes(max(moment + STEP, START), moment + coarse):
                if passes_nine(minute - STEP, minute):
                    return minute
        moment += coarse
    raise AssertionError(f"no 09:00 in {zone.key} within the walk")


def _out_of_quiet(moment: datetime, person: Person) -> datetime:
    """The first minute at or after `moment` outside the person's quiet hours.

    Read every 15 minutes, then minute by minute: no window here leaves a
    waking gap shorter than that, even across a daylight-saving change.
    """
    if not in_quiet_hours(moment, person.quiet, person.zone):
        return moment
    coarse = timedelta(minutes=15)
    while in_quiet_hours(moment + coarse, person.quiet, person.zone):
        moment += coarse
    moment += STEP
    while in_quiet_hours(moment, person.quiet, person.zone):
        moment += STEP
    return moment


@dataclass
class World:
    """The population, what was sent to it, and what the emulator received when."""

    people: list[Person]
    sends: list[Send]
    categories: tuple[Category, ...] = tuple(
        Category(c["name"], counts_toward_caps=c.get("counts_toward_caps", True))
        for c in CATEGORIES
    )
    app_caps: tuple[FrequencyCap, ...] = parse_caps(APP_CAPS)
    ids: dict[str, str] = field(default_factory=dict)
    """send name -> notification id"""
    arrivals: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """(send name, device id) -> the fake time its push reached the emulator"""
    received: dict[str, list[tuple[datetime, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    """user id -> (when, category) of every push they got"""

    def category(self, send: Send) -> Category | None:
        return find_category(self.categories, send.body.get("category"))


async def _walk(pipeline: Pipeline, world: World) -> None:
    """Post each send when its time comes and run the workers every minute for 26 hours.

    Two workers share the queue, so a user's pushes of one minute are often
    reserved against their caps by both at once.
    """
    rival = Worker(pipeline.database, pipeline.providers, pipeline.clock, poll_interval=0.01)
    by_push: dict[str, tuple[str, str]] = {}
    seen = 0
    for moment in _minutes(START, START + WALK):
        assert pipeline.clock.now() == moment
        for send in world.sends:
            if send.name not in world.ids and START + send.post_at <= moment:
                accepted = await pipeline.send(send.body)
                assert accepted.status_code == 202, accepted.text
                world.ids[send.name] = notification_id = accepted.json()["id"]
                for person in world.people:
                    key = str(push_id(notification_id, person.device_id))
                    by_push[key] = (send.name, person.device_id)
        await asyncio.gather(pipeline.worker.run_until_idle(), rival.run_until_idle())
        requests = pipeline.apns.state.requests
        for request in requests[seen:]:
            assert request.status == 200, (request.status, request.body)
            delivery = by_push[request.headers["apns-id"].lower()]
            assert delivery not in world.arrivals, f"pushed twice: {delivery}"
            world.arrivals[delivery] = moment
        seen = len(requests)
        pipeline.clock.advance(STEP.total_seconds())


def _check_arrivals(world: World) -> None:
    """Nobody without consent or opted out got a push, nobody inside their quiet hours."""
    by_device = {person.device_id: person for person in world.people}
    by_name = {send.name: send for send in world.sends}
    for (name, device_id), at in world.arrivals.items():
        person, category = by_device[device_id], world.category(by_name[name])
        assert person.consent != "denied", (name, person.user_id)
        assert person.allows(category), f"{person.user_id} opted out of {name}"
        local = at.astimezone(person.zone)
        assert not in_quiet_hours(at, person.quiet, person.zone), (name, person, local)
        world.received[person.user_id].append((at, str(by_name[name].body.get("category"))))


def _over_cap(
    pushes: list[tuple[datetime, str]], cap: FrequencyCap, categories: tuple[Category, ...]
) -> datetime | None:
    """The first push after which the cap's rolling window holds more than `max`, if any."""
    counted = sorted(
        at
        for at, name in pushes
        if counts_toward_caps(find_category(categories, name))
        and (cap.category is None or cap.category == name)
    )
    window = CAP_WINDOWS[cap.per]
    for index, at in enumerate(counted):
        inside = [other for other in counted[: index + 1] if other > at - window]
        if len(inside) > cap.max:
            return at
    return None


def _cap_full(world: World, person: Person, category: str, at: datetime) -> bool:
    """Whether some cap on `category` was already full at `at` (a frequency_cap is then true)."""
    if not counts_toward_caps(find_category(world.categories, category)):
        return False
    for cap in person.caps(world.app_caps):
        if cap.category not in (None, category):
            continue
        inside = [
            when
            for when, name in world.received[person.user_id]
            if at - CAP_WINDOWS[cap.per] < when <= at
            and counts_toward_caps(find_category(world.categories, name))
            and (cap.category is None or cap.category == name)
        ]
        if len(inside) >= cap.max:
            return True
    return False


def _check_delivery(
    world: World, send: Send, item: dict[str, Any], person: Person, nine: datetime
) -> str:
    """One delivery against the oracles; returns what it exercised."""
    status, reason = item["status"], item["reason"]
    assert status in FINAL, item
    arrival = world.arrivals.get((send.name, person.device_id))
    assert (status == "sent") == (arrival is not None), item
    if person.consent == "denied":
        assert (status, reason) == ("suppressed", "no_consent"), item
    elif not person.allows(world.category(send)):
        assert (status, reason) == ("suppressed", "category_opt_out"), item
    elif status == "suppressed" and reason == "frequency_cap":
        due = _parse(item["due_at"])
        ran = due if due.second == 0 else due.replace(second=0) + STEP  # its job's minute
        category = str(send.body.get("category"))
        assert _cap_full(world, person, category, ran), item
    elif status == "suppressed":
        assert (reason, send.name) == ("quiet_hours", "promo-2"), item
        assert in_quiet_hours(START + send.post_at, person.quiet, person.zone), item
    if arrival is None:
        return f"{status}:{reason}"
    due = _parse(item["due_at"])
    assert timedelta(0) <= arrival - due <= STEP, (item, arrival)
    wanted = nine if send.name == "digest" else START + send.post_at
    expected = _out_of_quiet(wanted, person)
    assert abs(arrival - expected) <= STEP, (item, arrival, expected, person)
    if expected == wanted:
        return "sent on time"
    if person.quiet and arrival.astimezone(person.zone).time() != person.quiet.end:
        return "sent at the end of a daylight-saving gap that ended quiet hours"
    return "sent when quiet hours ended"


async def _check_deliveries(pipeline: Pipeline, world: World) -> Counter[tuple[str, str]]:
    by_device = {person.device_id: person for person in world.people}
    nines = {zone: _nine_oclock(zone) for zone in {person.zone for person in world.people}}
    exercised: Counter[tuple[str, str]] = Counter()
    for send in world.sends:
        items = await _all_deliveries(pipeline, world.ids[send.name])
        audience = {p.device_id for p in world.people if send.region in (None, p.region)}
        assert {item["device_id"] for item in items} == audience
        assert len(items) == len(audience)
        for item in items:
            person = by_device[item["device_id"]]
            what = _check_delivery(world, send, item, person, nines[person.zone])
            exercised[(send.name, what)] += 1
    return exercised


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


async def test_ten_thousand_recipients_over_a_day_are_respected(
    apns_pipeline: Pipeline,
) -> None:
    pipeline, timings, began = apns_pipeline, {}, time.perf_counter()
    configured = await pipeline.api.patch(
        f"/v1/apps/{pipeline.app.id}",
        json={
            "default_timezone": APP_ZONE,
            "quiet_hours": APP_QUIET,
            "caps": APP_CAPS,
            "categories": CATEGORIES,
        },
        headers=pipeline.app.server(),
    )
    assert configured.status_code == 200, configured.text
    world = World(people(sorted(zoneinfo.available_timezones())), sends())
    for person in world.people:
        person.settle(parse_quiet_hours(APP_QUIET))
    assert len({person.zone.key for person in world.people}) >= min(300, USERS // 2)
    await seed(pipeline, world.people)
    timings["seed"] = time.perf_counter() - began

    await _walk(pipeline, world)
    timings["walk"] = time.perf_counter() - began - sum(timings.values())

    _check_arrivals(world)
    for person in world.people:
        for cap in person.caps(world.app_caps):
            over = _over_cap(world.received[person.user_id], cap, world.categories)
            assert over is None, (person, cap, over, sorted(world.received[person.user_id]))
    exercised = await _check_deliveries(pipeline, world)
    timings["check"] = time.perf_counter() - began - sum(timings.values())
    print(f"\n{len(world.arrivals)} pushes; seconds: {timings}")
    for key, count in sorted(exercised.items()):
        print(f"  {key}: {count}")
    for name, what in [
        ("digest", "sent on time"),
        ("digest", "sent when quiet hours ended"),
        ("digest", "suppressed:frequency_cap"),
        ("digest", "suppressed:category_opt_out"),
        ("promo-1", "suppressed:no_consent"),
        ("promo-1", "sent when quiet hours ended"),
        ("promo-2", "suppressed:quiet_hours"),
        ("promo-3", "sent on time"),
        ("promo-3", "suppressed:frequency_cap"),
        ("orders", "sent when quiet hours ended"),
        ("orders", "sent at the end of a daylight-saving gap that ended quiet hours"),
    ]:
        assert exercised[(name, what)] > 0, (name, what)
    # promo-1 and promo-2 go out in the same minute: one of them meets the 1-per-hour caps
    burst = [exercised[(name, "suppressed:frequency_cap")] for name in ("promo-1", "promo-2")]
    assert sum(burst) > 0
    assert exercised[("orders", "suppressed:frequency_cap")] == 0
