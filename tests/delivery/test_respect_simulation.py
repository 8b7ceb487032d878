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
import random
import time
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    QuietHours,
    UserPreferences,
    parse_caps,
    parse_quiet_hours,
)
from clarion.model.schedule import effective_quiet_hours, in_quiet_hours, recipient_zone
from clarion.store.devices import token_hash
from clarion.store.schema import devices, users
from clarion.store.users import preferences_for, put_preferences
from tests.delivery.conftest import Pipeline

pytestmark = pytest.mark.slow

USERS = 10_000
START = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Europe springs forward at 01:00 UTC tomorrow
STEP = timedelta(seconds=60)
WALK = timedelta(hours=26)
APP_ZONE = "America/Sao_Paulo"  # 09:00 there is START itself: a wave due at once
APP_QUIET = {"start": "22:00", "end": "08:00"}
APP_CAPS = [{"max": 2, "per": "day", "category": "marketing"}]
CATEGORIES: list[dict[str, Any]] = [
    {"name": "marketing"},
    {"name": "digest"},
    {"name": "orders", "counts_toward_caps": False},
]
GAP_WINDOW = {"start": "23:30", "end": "02:30"}  # ends inside Paris's 02:00-03:00 gap
# Users' own windows: wrapping midnight, covering 09:00 (the campaign is
# deferred to their end), and edges inside the 02:00-03:00 gap of Europe's
# spring-forward night.
USER_WINDOWS = [
    {"start": "23:00", "end": "07:00"},
    {"start": "21:30", "end": "09:30"},
    {"start": "08:30", "end": "09:15"},
    {"start": "13:00", "end": "14:30"},
    GAP_WINDOW,
    {"start": "02:30", "end": "10:00"},
    {"start": "00:00", "end": "06:00"},
]
USER_CAPS = [
    [{"max": 1, "per": "day", "category": "marketing"}],
    [{"max": 5, "per": "day", "category": "marketing"}],
    [{"max": 1, "per": "hour", "category": "marketing"}],
    [{"max": 2, "per": "day"}],
    [{"max": 0, "per": "week", "category": "digest"}],
]
STALE_ZONE = "Mars/Olympus_Mons"  # a device zone no longer known: falls through
FINAL = {"sent", "suppressed"}  # nothing expires: the default ttl is 28 days


@dataclass
class Person:
    """One seeded user and device, and the oracle's view of them."""

    user_id: str
    device_id: str
    token: str
    consent: str
    device_tz: str | None
    prefs: UserPreferences | None
    region: str
    zone: zoneinfo.ZoneInfo = field(init=False)
    quiet: QuietHours | None = field(init=False)

    def settle(self, app_quiet: QuietHours | None) -> None:
        user_tz = self.prefs.timezone if self.prefs else None
        self.zone = recipient_zone(user_tz, self.device_tz, APP_ZONE)
        self.quiet = effective_quiet_hours(app_quiet, self.prefs)

    def caps(self, app_caps: tuple[FrequencyCap, ...]) -> tuple[FrequencyCap, ...]:
        """The app's caps, each one the user set for the same category and period replacing it."""
        own = tuple(self.prefs.caps or ()) if self.prefs else ()
        chosen = {(cap.category, cap.per) for cap in own}
        return (*(cap for cap in app_caps if (cap.category, cap.per) not in chosen), *own)

    def allows(self, category: Category | None) -> bool:
        """The user's choice for the category, else its default."""
        if category is None:
            return True
        choices = self.prefs.categories if self.prefs else {}
        return choices.get(category.name, category.default_opt_in)


@dataclass(frozen=True)
class Send:
    """A notification of the simulation: what was asked and when it was posted."""

    name: str
    body: dict[str, Any]
    post_at: timedelta
    region: str | None = None  # the audience: everyone, or the devices tagged with this region


def _people(zones: list[str]) -> list[Person]:
    """A deterministic population; every zone gets users, in every mix."""
    rng = random.Random(6)
    people = []
    for index in range(USERS):
        zone = zones[index % len(zones)]
        roll = rng.random()
        consent = "denied" if roll < 0.06 else "provisional" if roll < 0.09 else "granted"
        device_tz: str | None = zone
        user_tz: str | None = None
        where = rng.random()
        if where < 0.10:
            device_tz = None  # the app's zone
        elif where < 0.13:
            device_tz = STALE_ZONE
        elif where < 0.25:
            user_tz, device_tz = zone, zones[(index * 7 + 3) % len(zones)]  # the user's wins
        quiet: dict[str, Any] = {}
        kind = rng.random()
        if kind < 0.15:
            quiet = {"quiet_hours": None, "quiet_hours_set": True}
        elif kind < 0.50:
            window = rng.choice(USER_WINDOWS)
            if zone.startswith("Europe/") and rng.random() < 0.5:
                window = GAP_WINDOW
            quiet = {"quiet_hours": parse_quiet_hours(window), "quiet_hours_set": True}
        choices: dict[str, bool] = {}
        if rng.random() < 0.15:
            choices["marketing"] = False
        elif rng.random() < 0.05:
            choices["marketing"] = True
        if rng.random() < 0.06:
            choices["digest"] = False
        caps = parse_caps(rng.choice(USER_CAPS)) if rng.random() < 0.30 else None
        prefs = None
        if quiet or choices or caps is not None or user_tz is not None:
            prefs = UserPreferences(
                categories=choices,
                quiet_hours=quiet.get("quiet_hours"),
                quiet_hours_set=bool(quiet.get("quiet_hours_set")),
                timezone=user_tz,
                caps=caps,
            )
        people.append(
            Person(
                user_id=f"user-{index:05d}",
                device_id=f"dev_{index:026d}",
                token=f"{index:064x}",
                consent=consent,
                device_tz=device_tz,
                prefs=prefs,
                region=zone.split("/")[0].lower(),
            )
        )
    return people


def _user_row(app_id: str, user_id: str, prefs: UserPreferences, now: datetime) -> dict[str, Any]:
    """A `users` row as `put_preferences` writes it (checked by reading all of them back)."""
    return {
        "app_id": app_id,
        "user_id": user_id,
        "categories": dict(prefs.categories),
        "quiet_hours": (
            {"window": prefs.quiet_hours.as_json() if prefs.quiet_hours else None}
            if prefs.quiet_hours_set
            else None
        ),
        "timezone": prefs.timezone,
        "caps": [cap.as_json() for cap in prefs.caps] if prefs.caps is not None else None,
        "created_at": now,
        "updated_at": now,
    }


async def _seed(pipeline: Pipeline, people: list[Person]) -> None:
    """Devices and most preferences in bulk straight into the store, some through its writer.

    Every user's preferences are then read back through the store's reader,
    so the pipeline sees exactly what the oracle assumes.
    """
    now = pipeline.clock.now()
    app_id = pipeline.app.id
    rows: list[dict[str, Any]] = [
        {
            "id": person.device_id,
            "app_id": app_id,
            "platform": "apns",
            "token": person.token,
            "token_hash": token_hash(person.token),
            "push_keys": None,
            "user_id": person.user_id,
            "locale": None,
            "timezone": person.device_tz,
            "app_version": None,
            "tags": {"region": person.region},
            "consent": person.consent,
            "active": True,
            "created_at": now,
            "updated_at": now,
            "last_seen": now,
        }
        for person in people
    ]
    choosers = [person for person in people if person.prefs is not None]
    written, bulk = choosers[::25], [p for i, p in enumerate(choosers) if i % 25]
    async with pipeline.database.write() as conn:
        await conn.execute(devices.insert(), rows)
        await conn.execute(
            users.insert(),
            [_user_row(app_id, p.user_id, p.prefs, now) for p in bulk if p.prefs is not None],
        )
        for person in written:
            assert person.prefs is not None
            await put_preferences(conn, app_id, person.user_id, person.prefs, now)
    async with pipeline.database.read() as conn:
        stored = await preferences_for(conn, app_id, [person.user_id for person in people])
    assert stored == {p.user_id: p.prefs for p in choosers}


def _sends() -> list[Send]:
    def marketing(title: str, **schedule: Any) -> dict[str, Any]:
        return {
            "audience": {"all": True},
            "category": "marketing",
            "content": {"title": title},
            "schedule": schedule,
        }

    return [
        Send(
            "digest",
            {
                "audience": {"all": True},
                "category": "digest",
                "content": {"title": "Your morning digest"},
                "schedule": {"local_time": "09:00", "quiet_hours": "defer"},
            },
            timedelta(0),
        ),
        Send("promo-1", marketing("Spring sale"), timedelta(0)),
        Send("promo-2", marketing("Flash deal", quiet_hours="drop"), timedelta(0)),
        Send("promo-3", marketing("Weekend picks"), timedelta(hours=6)),
        # Midnight in Paris on the night its clocks skip 02:00-03:00: windows
        # ending at 02:30 end at 03:00 CEST. Orders neither use nor meet caps.
        Send(
            "orders",
            {
                "audience": {"filter": "tag.region = 'europe'"},
                "category": "orders",
                "content": {"title": "Your order shipped"},
            },
            timedelta(hours=11),
            region="europe",
        ),
    ]


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
    people = {person.device_id: person for person in world.people}
    sends = {send.name: send for send in world.sends}
    for (name, device_id), at in world.arrivals.items():
        person, category = people[device_id], world.category(sends[name])
        assert person.consent != "denied", (name, person.user_id)
        assert person.allows(category), f"{person.user_id} opted out of {name}"
        local = at.astimezone(person.zone)
        assert not in_quiet_hours(at, person.quiet, person.zone), (name, person, local)
        world.received[person.user_id].append((at, str(sends[name].body.get("category"))))


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
    people = {person.device_id: person for person in world.people}
    nines = {zone: _nine_oclock(zone) for zone in {person.zone for person in world.people}}
    exercised: Counter[tuple[str, str]] = Counter()
    for send in world.sends:
        items = await _all_deliveries(pipeline, world.ids[send.name])
        audience = {p.device_id for p in world.people if send.region in (None, p.region)}
        assert {item["device_id"] for item in items} == audience
        assert len(items) == len(audience)
        for item in items:
            person = people[item["device_id"]]
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
    world = World(_people(sorted(zoneinfo.available_timezones())), _sends())
    for person in world.people:
        person.settle(parse_quiet_hours(APP_QUIET))
    assert len({person.zone.key for person in world.people}) >= min(300, USERS // 2)
    await _seed(pipeline, world.people)
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
