"""Hypothesis strategies and helpers for tests of the recipient's clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from clarion.model.preferences import QuietHours
from tests.model.clock_oracle import ALL_ZONES, MINUTE, transitions, wall

# Zones whose clocks change in odd ways: 30-minute DST (Lord Howe), a skipped
# day (Apia), changes at midnight (Santiago, Havana, Beirut, Tehran until
# 2022), negative DST (Dublin), two-hour DST (Troll), Ramadan pauses
# (Casablanca), 45-minute offsets (Chatham), one-off zone moves (Magadan).
TRICKY = (
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "America/Santiago",
    "Asia/Tehran",
    "America/Havana",
    "Asia/Beirut",
    "Europe/Dublin",
    "Antarctica/Troll",
    "Africa/Casablanca",
    "Pacific/Chatham",
    "Asia/Magadan",
    "America/Asuncion",
    "Asia/Gaza",
)
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def at(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


times = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@st.composite
def clock_cases(draw: st.DrawFn) -> tuple[ZoneInfo, datetime, time]:
    """A zone, an instant (often within a day and a half of a DST change) and a wall time.

    The wall time is often one the change skips or repeats.
    """
    name = draw(st.sampled_from(TRICKY) | st.sampled_from(ALL_ZONES))
    zone = ZoneInfo(name)
    year = draw(st.integers(1973, 2037))
    changes = transitions(name, year)
    if changes and draw(st.integers(0, 4)):
        change = draw(st.sampled_from(changes))
        moment = change + draw(st.integers(-36 * 60, 36 * 60)) * MINUTE
        near = wall(change, zone) + draw(st.integers(-75, 75)) * MINUTE
        local = near.time() if draw(st.integers(0, 2)) else draw(times)
    else:
        moment = utc(year, 1, 1) + draw(st.integers(0, 364 * 24 * 60)) * MINUTE
        local = draw(times)
    seconds = draw(st.sampled_from([0, 0, 0, 1, 59]))
    return zone, moment + timedelta(seconds=seconds), local


windows = st.builds(
    QuietHours,
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59])),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 1, 30, 45])),
).filter(lambda quiet: quiet.start != quiet.end)
