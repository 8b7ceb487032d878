"""The population of the respect simulation: who the 10,000 recipients are and what they get.

Deterministic (a seeded generator), so a failing run can be replayed. Each
`Person` also carries the oracle's view of them (`settle`): their zone, their
quiet hours, their caps and category choices, computed the way the issue
states the rules, for `test_respect_simulation` to judge the pipeline by.
"""

from __future__ import annotations

import random
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clarion.model.app import Category
from clarion.model.preferences import (
    FrequencyCap,
    QuietHours,
    UserPreferences,
    parse_caps,
    parse_quiet_hours,
)
from clarion.model.schedule import effective_quiet_hours, recipient_zone
from clarion.store.devices import token_hash
from clarion.store.schema import devices, users
from clarion.store.users import preferences_for, put_preferences
from tests.delivery.conftest import Pipeline

USERS = 10_000
START = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Europe springs forward at 01:00 UTC tomorrow
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


def people(zones: list[str]) -> list[Person]:
    """A deterministic population; every zone gets users, in every mix."""
    rng = random.Random(6)
    result = []
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
        result.append(
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
    return result


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


async def seed(pipeline: Pipeline, people: list[Person]) -> None:
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


def sends() -> list[Send]:
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
