"""The recipient's clock: local-time delivery and quiet hours in every zone, across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion.model.app import Category
from clarion.model.errors import FieldError
from clarion.model.notification import QuietHoursMode, Schedule
from clarion.model.policy import Suppression
from clarion.model.preferences import QuietHours, UserPreferences
from clarion.model.schedule import (
    DeliveryPlan,
    PlanStatus,
    check_quiet_mode,
    describe_plan,
    effective_quiet_hours,
    in_quiet_hours,
    local_instant,
    next_local_time,
    plan_delivery,
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

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = QuietHours(time(22), time(8))
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


windows = st.builds(
    QuietHours,
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59])),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 1, 30, 45])),
).filter(lambda quiet: quiet.start != quiet.end)


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


# --- the delivery plan ---------------------------------------------------------------

NOW = utc(2026, 6, 1, 12)  # 14:00 in Paris


def plan(
    schedule: Schedule,
    *,
    time_sensitive: bool = False,
    now: datetime = NOW,
    expires_at: datetime | None = None,
) -> DeliveryPlan:
    """Paris, quiet 22:00-08:00."""
    return plan_delivery(
        schedule,
        now=now,
        zone=PARIS,
        quiet=NIGHT,
        time_sensitive=time_sensitive,
        expires_at=expires_at,
    )


def test_plain_send_outside_quiet_hours_is_due_now() -> None:
    result = plan(Schedule(send_at=NOW))
    assert (result.status, result.due_at, result.deferred) == (PlanStatus.DUE, NOW, False)
    assert not result.scheduled


def test_local_time_delivery_is_scheduled_for_the_recipients_morning() -> None:
    result = plan(Schedule(send_at=NOW, local_time="09:00"))
    assert result.status is PlanStatus.SCHEDULED and result.scheduled
    assert result.due_at == at(PARIS, 2026, 6, 2, 9)
    assert "due 2026-06-02 09:00 CEST" in describe_plan(result, PARIS)


def test_local_time_inside_quiet_hours_is_deferred_to_the_windows_end() -> None:
    result = plan(Schedule(send_at=NOW, local_time="23:00"))
    assert result.due_at == at(PARIS, 2026, 6, 2, 8)
    assert result.wanted_at == at(PARIS, 2026, 6, 1, 23)
    assert result.deferred
    assert "deferred by quiet hours" in describe_plan(result, PARIS)


def test_drop_suppresses_a_send_inside_quiet_hours() -> None:
    result = plan(Schedule(send_at=NOW, local_time="23:00", quiet_hours=QuietHoursMode.DROP))
    assert (result.status, result.reason, result.due_at) == (
        PlanStatus.SUPPRESSED,
        Suppression.QUIET_HOURS,
        None,
    )
    assert "quiet_hours" in describe_plan(result, PARIS)


def test_ignore_breaks_quiet_hours_only_for_time_sensitive_categories() -> None:
    schedule = Schedule(send_at=NOW, local_time="23:00", quiet_hours=QuietHoursMode.IGNORE)
    assert plan(schedule, time_sensitive=True).due_at == at(PARIS, 2026, 6, 1, 23)
    assert plan(schedule, time_sensitive=False).due_at == at(PARIS, 2026, 6, 2, 8)


def test_delivery_deferred_past_its_ttl_expires() -> None:
    schedule = Schedule(send_at=NOW, local_time="23:00")
    result = plan(schedule, expires_at=NOW + timedelta(hours=12))
    assert (result.status, result.due_at, result.deferred) == (PlanStatus.EXPIRED, None, True)
    assert "expired" in describe_plan(result, PARIS)
    assert plan(schedule, expires_at=at(PARIS, 2026, 6, 2, 8)).status is PlanStatus.SCHEDULED


def test_late_planner_sends_a_passed_local_time_now_rather_than_tomorrow() -> None:
    schedule = Schedule(send_at=at(PARIS, 2026, 6, 1, 8, 59), local_time="09:00")
    result = plan(schedule, now=at(PARIS, 2026, 6, 1, 9, 5))
    assert (result.status, result.due_at) == (PlanStatus.DUE, at(PARIS, 2026, 6, 1, 9, 5))
    assert "sending now" in describe_plan(result, PARIS)


def test_ignore_is_refused_for_categories_that_are_not_time_sensitive() -> None:
    with pytest.raises(FieldError) as refused:
        check_quiet_mode(QuietHoursMode.IGNORE, Category("marketing"))
    assert refused.value.field == "schedule.quiet_hours"
    with pytest.raises(FieldError):
        check_quiet_mode(QuietHoursMode.IGNORE, None)
    check_quiet_mode(QuietHoursMode.IGNORE, Category("alarm", time_sensitive=True))
    check_quiet_mode(QuietHoursMode.DROP, Category("marketing"))


@given(
    clock_cases(),
    windows,
    st.sampled_from(list(QuietHoursMode)),
    st.booleans(),
    st.booleans(),
    st.integers(-600, 600),
)
@SLOW
def test_no_delivery_that_may_not_break_quiet_hours_falls_inside_them(
    case: tuple[ZoneInfo, datetime, time],
    quiet: QuietHours,
    mode: QuietHoursMode,
    use_local_time: bool,
    time_sensitive: bool,
    lag_minutes: int,
) -> None:
    zone, send_at, local = case
    now = send_at + lag_minutes * MINUTE
    schedule = Schedule(send_at, local.strftime("%H:%M") if use_local_time else None, mode)
    result = plan_delivery(schedule, now=now, zone=zone, quiet=quiet, time_sensitive=time_sensitive)
    earliest = max(result.wanted_at, now)
    assert result.wanted_at >= send_at
    breaks_quiet = mode is QuietHoursMode.IGNORE and time_sensitive
    if result.status is PlanStatus.SUPPRESSED:
        assert mode is QuietHoursMode.DROP and in_quiet_hours(earliest, quiet, zone)
        return
    assert result.due_at is not None and result.due_at >= earliest
    assert result.scheduled == (result.due_at > now)
    if not breaks_quiet:
        assert not in_quiet_hours(result.due_at, quiet, zone)
    assert result.deferred == (result.due_at != earliest)
