"""The recipient's clock: local-time delivery and quiet hours in every zone, across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given

from clarion.model.preferences import QuietHours, UserPreferences
from clarion.model.schedule import (
    effective_quiet_hours,
    in_quiet_hours,
    local_instant,
    next_local_time,
    quiet_hours_end,
    recipient_zone,
)
from tests.model.clock_oracle import (
    ALL_ZONES,
    DAY,
    LOOKBACK,
    MINUTE,
    first_fire,
    quiet_by_scan,
    quiet_states,
    scheduled_day,
    transitions,
    wall,
)
from tests.model.clock_strategies import SLOW, at, clock_cases, utc, windows

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = QuietHours(time(22), time(8))


# --- local-time delivery -------------------------------------------------------------


def test_missing_wall_time_moves_to_end_of_spring_forward_gap() -> None:
    fired = next_local_time(utc(2026, 3, 28, 12), time(2, 30), PARIS)
    assert fired == utc(2026, 3, 29, 1)
    assert fired.astimezone(PARIS).strftime("%H:%M %Z") == "03:00 CEST"


def test_repeated_wall_time_fires_once_at_first_occurrence() -> None:
    first = next_local_time(utc(2026, 10, 31, 12), time(1, 30), NEW_YORK)
    assert first.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M %Z") == "2026-11-01 01:30 EDT"
    second = next_local_time(first + timedelta(seconds=1), time(1, 30), NEW_YORK)
    assert second.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M %Z") == "2026-11-02 01:30 EST"


@pytest.mark.parametrize(
    ("zone", "day", "local", "expected"),
    [
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), "2026-10-04 02:30 +11"),
        ("Australia/Lord_Howe", date(2026, 4, 5), time(1, 45), "2026-04-05 01:45 +11"),
        ("Pacific/Apia", date(2011, 12, 30), time(9), "2011-12-31 00:00 +14"),
        ("America/Santiago", date(2026, 9, 6), time(0, 30), "2026-09-06 01:00 -03"),
        ("America/Santiago", date(2026, 4, 4), time(23, 30), "2026-04-04 23:30 -03"),
        ("Asia/Tehran", date(2021, 3, 22), time(0, 30), "2021-03-22 01:00 +0430"),
        ("Asia/Tehran", date(2021, 9, 21), time(23, 30), "2021-09-21 23:30 +0430"),
    ],
)
def test_wall_time_on_dst_days_of_real_zones(
    zone: str, day: date, local: time, expected: str
) -> None:
    instant = local_instant(day, local, ZoneInfo(zone))
    assert instant.tzinfo is UTC
    assert instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") == expected


def test_local_time_already_passed_today_fires_tomorrow() -> None:
    assert next_local_time(at(PARIS, 2026, 6, 1, 9, 0, 1), time(9), PARIS) == at(
        PARIS, 2026, 6, 2, 9
    )
    assert next_local_time(at(PARIS, 2026, 6, 1, 9), time(9), PARIS) == at(PARIS, 2026, 6, 1, 9)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_local_time(datetime(2026, 6, 1), time(9), PARIS)  # noqa: DTZ001


@given(clock_cases())
@SLOW
def test_next_local_time_is_the_first_firing_a_minute_scan_finds(
    case: tuple[ZoneInfo, datetime, time],
) -> None:
    zone, after, local = case
    fired = next_local_time(after, local, zone)
    assert fired >= after
    assert fired.tzinfo is UTC
    assert scheduled_day(fired, local, zone) is not None
    assert fired.astimezone(zone).fold == 0
    assert fired == first_fire(after, local, zone, limit=3 * DAY)


def _interesting_times(name: str, zone: ZoneInfo) -> list[tuple[datetime, time]]:
    """(start, wall time): 09:00 in January, and the times each 2026 change skips or repeats."""
    cases = [(utc(2026, 1, 10), time(9))]
    for change in transitions(name, 2026):
        before, after = wall(change - MINUTE, zone) + MINUTE, wall(change, zone)
        middle = min(before, after) + abs(after - before) / 2
        for shown in (before, after, middle, before - MINUTE, after + MINUTE):
            cases.append((change - 2 * DAY, shown.time().replace(second=0, microsecond=0)))
    return cases


def test_local_time_fires_exactly_once_per_day_in_every_zone_across_2026_changes() -> None:
    for name in ALL_ZONES:
        zone = ZoneInfo(name)
        for start, local in _interesting_times(name, zone):
            fired = next_local_time(start, local, zone)
            days = [scheduled_day(fired, local, zone)]
            for _ in range(4):
                following = next_local_time(fired + timedelta(seconds=1), local, zone)
                assert timedelta(hours=21) <= following - fired <= timedelta(hours=27), name
                fired = following
                days.append(scheduled_day(fired, local, zone))
            first = days[0]
            assert first is not None, (name, local)
            assert days == [first + n * DAY for n in range(5)], (name, local)


# --- time zones ----------------------------------------------------------------------


def test_recipient_zone_prefers_user_then_device_then_app() -> None:
    assert recipient_zone("Asia/Tokyo", "Europe/Paris", "UTC").key == "Asia/Tokyo"
    assert recipient_zone(None, "Europe/Paris", "UTC").key == "Europe/Paris"
    assert recipient_zone("Mars/Olympus", "", "America/Chicago").key == "America/Chicago"


def test_unknown_zone_names_fall_through_to_utc() -> None:
    assert recipient_zone("Nowhere/Land", "../../etc/passwd", "Europe").key == "UTC"
    assert recipient_zone(None, None, None).key == "UTC"


# --- quiet hours ---------------------------------------------------------------------


def test_night_window_wraps_midnight() -> None:
    assert in_quiet_hours(at(PARIS, 2026, 6, 1, 22), NIGHT, PARIS)
    assert in_quiet_hours(at(PARIS, 2026, 6, 2, 3), NIGHT, PARIS)
    assert in_quiet_hours(at(PARIS, 2026, 6, 2, 7, 59), NIGHT, PARIS)
    assert not in_quiet_hours(at(PARIS, 2026, 6, 2, 8), NIGHT, PARIS)
    assert not in_quiet_hours(at(PARIS, 2026, 6, 1, 21, 59), NIGHT, PARIS)
    assert quiet_hours_end(at(PARIS, 2026, 6, 1, 23, 30), NIGHT, PARIS) == at(PARIS, 2026, 6, 2, 8)


def test_no_window_is_never_quiet() -> None:
    moment = at(PARIS, 2026, 6, 1, 23)
    assert not in_quiet_hours(moment, None, PARIS)
    assert quiet_hours_end(moment, None, PARIS) == moment


def test_outside_the_window_the_end_is_the_moment_itself() -> None:
    moment = at(PARIS, 2026, 6, 1, 12, 0, 30)
    assert quiet_hours_end(moment, NIGHT, PARIS) == moment


def test_window_ending_in_the_spring_forward_gap_ends_when_the_clock_jumps() -> None:
    quiet = QuietHours(time(1), time(2, 30))
    assert quiet_hours_end(at(PARIS, 2026, 3, 29, 1, 15), quiet, PARIS) == utc(2026, 3, 29, 1)


def test_window_ending_at_a_repeated_time_ends_at_its_first_occurrence() -> None:
    quiet = QuietHours(time(22), time(1, 30))
    end = quiet_hours_end(at(NEW_YORK, 2026, 10, 31, 23), quiet, NEW_YORK)
    assert end.astimezone(NEW_YORK).strftime("%H:%M %Z") == "01:30 EDT"
    assert not in_quiet_hours(at(NEW_YORK, 2026, 11, 1, 1, 10, fold=1), quiet, NEW_YORK)


def test_window_lying_wholly_in_the_gap_does_not_happen_that_night() -> None:
    quiet = QuietHours(time(2, 5), time(2, 40))
    assert not in_quiet_hours(utc(2026, 3, 29, 1), quiet, PARIS)
    assert in_quiet_hours(at(PARIS, 2026, 3, 30, 2, 10), quiet, PARIS)


def test_repeated_hour_is_quiet_when_the_clock_had_reached_the_window() -> None:
    quiet = QuietHours(time(1, 45), time(6))
    assert in_quiet_hours(at(NEW_YORK, 2026, 11, 1, 1, 10, fold=1), quiet, NEW_YORK)
    assert not in_quiet_hours(at(NEW_YORK, 2026, 11, 1, 1, 10, fold=0), quiet, NEW_YORK)


@given(clock_cases(), windows)
@SLOW
def test_quiet_hours_match_a_minute_scan_of_the_clock(
    case: tuple[ZoneInfo, datetime, time], quiet: QuietHours
) -> None:
    zone, moment, _ = case
    assert in_quiet_hours(moment, quiet, zone) == quiet_by_scan(
        moment, quiet.start, quiet.end, zone
    )


@given(clock_cases(), windows)
@SLOW
def test_quiet_hours_end_is_the_first_instant_outside_the_window(
    case: tuple[ZoneInfo, datetime, time], quiet: QuietHours
) -> None:
    zone, moment, _ = case
    end = quiet_hours_end(moment, quiet, zone)
    assert end >= moment
    assert not in_quiet_hours(end, quiet, zone)
    assert (end > moment) == in_quiet_hours(moment, quiet, zone)
    if end == moment:
        return
    states = dict(quiet_states(quiet.start, quiet.end, zone, moment - LOOKBACK, end))
    assert states[end] is False
    minute = moment.replace(second=0, microsecond=0)
    while minute < end:
        assert states[minute], minute
        minute += MINUTE


@given(clock_cases(), windows)
@SLOW
def test_a_window_and_its_complement_split_the_clock(
    case: tuple[ZoneInfo, datetime, time], quiet: QuietHours
) -> None:
    zone, moment, _ = case
    flipped = QuietHours(quiet.end, quiet.start)
    assert in_quiet_hours(moment, quiet, zone) != in_quiet_hours(moment, flipped, zone)


def test_user_quiet_hours_override_the_app_including_none() -> None:
    app_quiet = QuietHours(time(21), time(7))
    mine = QuietHours(time(23), time(6))

    def prefs(quiet: QuietHours | None, chosen: bool) -> UserPreferences:
        return UserPreferences({}, quiet, chosen, None, None)

    assert effective_quiet_hours(app_quiet, None) == app_quiet
    assert effective_quiet_hours(app_quiet, prefs(None, False)) == app_quiet
    assert effective_quiet_hours(app_quiet, prefs(mine, True)) == mine
    assert effective_quiet_hours(app_quiet, prefs(None, True)) is None
    assert effective_quiet_hours(None, prefs(mine, True)) == mine
