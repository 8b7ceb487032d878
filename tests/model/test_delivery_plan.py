"""One recipient's delivery plan: local time, quiet hours (defer, drop, ignore) and expiry."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.model.app import Category
from clarion.model.errors import FieldError
from clarion.model.notification import QuietHoursMode, Schedule
from clarion.model.policy import Suppression
from clarion.model.preferences import QuietHours
from clarion.model.schedule import (
    DeliveryPlan,
    PlanStatus,
    check_quiet_mode,
    describe_plan,
    in_quiet_hours,
    plan_delivery,
)
from tests.model.clock_oracle import MINUTE
from tests.model.clock_strategies import SLOW, at, clock_cases, utc, windows

PARIS = ZoneInfo("Europe/Paris")
NIGHT = QuietHours(time(22), time(8))

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
