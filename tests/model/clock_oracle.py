"""A brute-force model of a recipient's clock, independent of `clarion.model.schedule`.

It walks the timeline minute by minute and looks at what the clock shows:
an event for wall time X on a local date happens at the first instant the
clock reads X (fold 0 only: the second reading on a fall-back night is not
new), or, when the clock jumps forward over X, at the first instant after the
jump. Tests compare the schedule functions with it.

Every zone's offsets are whole minutes and its transitions fall on whole
minutes from 1973 on (Africa/Monrovia kept -0:44:30 until 1972), so a minute
grid sees every event; tests only draw dates from that range.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
# Some window edge happens within any 30 hours (days are at most 26 hours long).
LOOKBACK = timedelta(hours=30)
ALL_ZONES = tuple(sorted(available_timezones()))


def wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


def events_at(
    instant: datetime, zone: ZoneInfo, wanted: set[time], before: datetime | None = None
) -> list[datetime]:
    """The local date-times with a time in `wanted` whose event is at `instant`, in order.

    `before` is what the clock read a minute earlier, when the caller knows.
    """
    shown = instant.astimezone(zone)
    naive = shown.replace(tzinfo=None, fold=0)
    # the clock reads [before + 1 min, naive) nowhere when it jumped forward at `instant`
    before = (wall(instant - MINUTE, zone) if before is None else before) + MINUTE
    found = []
    if before < naive:
        day = before.date()
        while day <= naive.date():
            found += [datetime.combine(day, t) for t in wanted]
            day += DAY
        found = [x for x in found if before <= x < naive]
    if naive.time() in wanted and shown.fold == 0:
        found.append(naive)
    return sorted(found)


def scheduled_day(instant: datetime, local: time, zone: ZoneInfo) -> date | None:
    """The local date whose `local` fires at `instant`, if any."""
    fired = events_at(instant, zone, {local})
    return fired[-1].date() if fired else None


def first_fire(after: datetime, local: time, zone: ZoneInfo, limit: timedelta) -> datetime:
    instant = ceil_minute(after)
    while instant <= after + limit:
        if events_at(instant, zone, {local}):
            return instant
        instant += MINUTE
    raise AssertionError(f"{local} never fired in {zone.key} after {after}")


def quiet_states(
    start: time, end: time, zone: ZoneInfo, since: datetime, until: datetime
) -> Iterator[tuple[datetime, bool | None]]:
    """(minute, inside the window?) from `since` to `until`; None until the first event."""
    state: bool | None = None
    instant = since.replace(second=0, microsecond=0)
    before = wall(instant - MINUTE, zone)
    while instant <= until:
        for event in events_at(instant, zone, {start, end}, before):
            state = event.time() == start
        yield instant, state
        before = wall(instant, zone)
        instant += MINUTE


def quiet_by_scan(moment: datetime, start: time, end: time, zone: ZoneInfo) -> bool:
    *_, (_, state) = quiet_states(start, end, zone, moment - LOOKBACK, moment)
    assert state is not None
    return state


@cache
def transitions(name: str, year: int) -> tuple[datetime, ...]:
    """The instants in `year` at which the zone's UTC offset changes."""
    zone = ZoneInfo(name)
    found = []
    previous = datetime(year, 1, 1, tzinfo=UTC)
    for day in range(1, 367):
        current = datetime(year, 1, 1, tzinfo=UTC) + day * DAY
        if previous.astimezone(zone).utcoffset() != current.astimezone(zone).utcoffset():
            low, high = previous, current
            while high - low > MINUTE:
                middle = low + (high - low) / 2
                middle = middle.replace(second=0, microsecond=0)
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high)
        previous = current
    return tuple(found)
