"""The recipient's clock: time zones, local-time delivery and quiet hours.

This is the only module that handles local time; everything enters and
leaves it as an aware UTC `datetime`.

One rule turns a wall-clock time on a local date into an instant, and every
function here uses it (`local_instant`), so local-time delivery and the edges
of quiet hours agree on daylight-saving days:

- a wall time that does not exist (the clock jumps over it when it springs
  forward) means the first instant after the jump: Paris 2026-03-29 02:30 is
  03:00 CEST;
- a wall time the clock shows twice (when it falls back) means its first
  occurrence: New York 2026-11-01 01:30 is 01:30 EDT, never 01:30 EST.

A quiet-hours window therefore happens once per local night: it runs from
`local_instant(day, start)` to `local_instant(day or day + 1, end)`, and the
repeated hour of a fall-back night is inside it exactly when the hour the
clock had already reached before jumping back was inside it.
"""

from __future__ import annotations

import math
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache

from clarion.model.app import Category
from clarion.model.errors import FieldError
from clarion.model.notification import QuietHoursMode, Schedule
from clarion.model.policy import Suppression
from clarion.model.preferences import QuietHours, UserPreferences, parse_hhmm

_DAY = timedelta(days=1)
# Enough local days to look back and ahead for a window containing an
# instant: a few zones once skipped or repeated most of a day (Pacific/Apia
# jumped over 2011-12-30).
_SEARCH_DAYS = (0, -1, -2, 1)
_MAX_CHAINED_WINDOWS = 8


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@lru_cache(maxsize=1024)
def zone_named(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The IANA zone called `name`, or None when it is missing or unknown.

    Cached: `ZoneInfo` keeps only a few zones strongly, so a campaign across
    every zone would otherwise re-read zone files from disk all along.
    """
    if not name or name not in _zone_names():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        return None


def recipient_zone(
    user_tz: str | None, device_tz: str | None, app_tz: str | None
) -> zoneinfo.ZoneInfo:
    """Whose clock counts: the user's zone, else the device's, else the app's, else UTC.

    A stale or misspelled name falls through to the next one rather than
    failing the delivery.
    """
    for name in (user_tz, device_tz, app_tz):
        zone = zone_named(name)
        if zone is not None:
            return zone
    return zoneinfo.ZoneInfo("UTC")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("schedule times must be aware datetimes (UTC), not naive ones")
    return moment.astimezone(UTC)


def _wall(instant: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The naive local date and time the clock in `zone` shows at `instant`."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def local_instant(day: date, wall: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """The instant (UTC) the clock in `zone` first reads `wall` on `day`.

    A missing wall time gives the first instant after the gap; a repeated one
    gives its first occurrence (see the module docstring).
    """
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    if _wall(first, zone) == naive:
        return first
    return _end_of_gap(naive, zone)


def _end_of_gap(naive: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The transition instant that jumps over the non-existent local time `naive`.

    Between `naive` read with the offset after and the offset before the
    transition, the clock reads before `naive` up to the transition and after
    it from then on; transitions fall on whole seconds, so bisect on seconds.
    """
    offsets = [naive.replace(tzinfo=zone, fold=fold).utcoffset() or timedelta() for fold in (0, 1)]
    low = math.floor((naive - max(offsets)).replace(tzinfo=UTC).timestamp())
    high = math.ceil((naive - min(offsets)).replace(tzinfo=UTC).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) > naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def next_local_time(after: datetime, local: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first instant at or after `after` at which the clock in `zone` reads `local`.

    "Deliver at 09:00 local" fires once per local day: at 09:00, or at the
    first instant after a daylight-saving gap that swallowed 09:00, or at the
    first of two 01:30s on a fall-back night.
    """
    start = _utc(after)
    day = start.astimezone(zone).date() - _DAY
    for offset in range(8):
        candidate = local_instant(day + offset * _DAY, local, zone)
        if candidate >= start:
            return candidate
    raise AssertionError(f"no {local} in {zone.key} within a week of {start}")  # pragma: no cover


def _window_end(moment: datetime, quiet: QuietHours, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """The end of the window occurrence containing `moment` (a UTC instant), if any.

    Occurrences never overlap, so the local days are tried most likely first.
    """
    today = moment.astimezone(zone).date()
    end_day = _DAY if quiet.start > quiet.end else timedelta()
    for offset in _SEARCH_DAYS:
        day = today + offset * _DAY
        if local_instant(day, quiet.start, zone) <= moment:
            end = local_instant(day + end_day, quiet.end, zone)
            if moment < end:
                return end
    return None


def in_quiet_hours(moment: datetime, quiet: QuietHours | None, zone: zoneinfo.ZoneInfo) -> bool:
    """Whether `moment` falls inside the recipient's quiet hours (windows may wrap midnight).

    A window whose start equals its end is empty.
    """
    if quiet is None:
        return False
    return _window_end(_utc(moment), quiet, zone) is not None


def quiet_hours_end(
    moment: datetime, quiet: QuietHours | None, zone: zoneinfo.ZoneInfo
) -> datetime:
    """The first instant at or after `moment` outside quiet hours.

    That is `moment` itself when it is outside, else the end of the window
    containing it (or of the next one, when a daylight-saving jump makes one
    night's window begin where the previous one ends).
    """
    current = _utc(moment)
    if quiet is None:
        return current
    for _ in range(_MAX_CHAINED_WINDOWS):
        end = _window_end(current, quiet, zone)
        if end is None:
            return current
        current = end
    raise AssertionError(f"quiet hours {quiet} never end in {zone.key}")  # pragma: no cover


def effective_quiet_hours(
    app_quiet: QuietHours | None, user_prefs: UserPreferences | None
) -> QuietHours | None:
    """The user's own window when they chose one (including "none"), else the app's."""
    if user_prefs is not None and user_prefs.quiet_hours_set:
        return user_prefs.quiet_hours
    return app_quiet


def check_quiet_mode(
    mode: QuietHoursMode, category: Category | None, field: str = "schedule.quiet_hours"
) -> None:
    """`ignore` may break the recipient's quiet hours only for a time-sensitive category."""
    if mode is QuietHoursMode.IGNORE and (category is None or not category.time_sensitive):
        raise FieldError(field, "'ignore' is allowed only for a time-sensitive category")


class PlanStatus(StrEnum):
    """What to do with one delivery now."""

    DUE = "due"  # send it now
    SCHEDULED = "scheduled"  # wait until `due_at`
    SUPPRESSED = "suppressed"  # never send (see `reason`)
    EXPIRED = "expired"  # it could only go after send_at + ttl


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """When one recipient gets a notification, and why (the delivery's "explain").

    `wanted_at` is when it would go without quiet hours (send_at, or the
    recipient's local time); `due_at` is when it goes, None unless DUE or
    SCHEDULED; `deferred` says quiet hours pushed it back.
    """

    status: PlanStatus
    wanted_at: datetime
    due_at: datetime | None = None
    reason: Suppression | None = None
    deferred: bool = False

    @property
    def scheduled(self) -> bool:
        return self.status is PlanStatus.SCHEDULED


def plan_delivery(
    schedule: Schedule,
    *,
    now: datetime,
    zone: zoneinfo.ZoneInfo,
    quiet: QuietHours | None,
    time_sensitive: bool,
    expires_at: datetime | None = None,
) -> DeliveryPlan:
    """Apply local-time delivery, quiet hours and expiry to one recipient.

    `ignore` for a category that is not time-sensitive (it may have changed
    since the API accepted the notification) is treated as `defer`: the
    recipient's sleep wins over a stale flag.
    """
    current = _utc(now)
    wanted = _utc(schedule.send_at)
    if schedule.local_time is not None:
        wanted = next_local_time(wanted, parse_hhmm(schedule.local_time, "local_time"), zone)
    due = max(wanted, current)
    ignores = schedule.quiet_hours is QuietHoursMode.IGNORE and time_sensitive
    deferred = False
    if not ignores and in_quiet_hours(due, quiet, zone):
        if schedule.quiet_hours is QuietHoursMode.DROP:
            return DeliveryPlan(PlanStatus.SUPPRESSED, wanted, reason=Suppression.QUIET_HOURS)
        due, deferred = quiet_hours_end(due, quiet, zone), True
    if expires_at is not None and due > _utc(expires_at):
        return DeliveryPlan(PlanStatus.EXPIRED, wanted, deferred=deferred)
    status = PlanStatus.SCHEDULED if due > current else PlanStatus.DUE
    return DeliveryPlan(status, wanted, due_at=due, deferred=deferred)


def describe_plan(plan: DeliveryPlan, zone: zoneinfo.ZoneInfo) -> str:
    """One sentence for the delivery's explain view, in the recipient's local time."""

    def local(instant: datetime) -> str:
        return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    wanted = f"planned for {local(plan.wanted_at)} ({zone.key})"
    if plan.status is PlanStatus.SUPPRESSED:
        return f"{wanted}; not sent: {plan.reason} (dropped inside quiet hours)"
    if plan.status is PlanStatus.EXPIRED:
        return f"{wanted}; expired: it could not go before its ttl ran out"
    due = local(plan.due_at or plan.wanted_at)
    if plan.deferred:
        wanted += f", deferred by quiet hours to {due}"
    return f"{wanted}; sending now" if plan.status is PlanStatus.DUE else f"{wanted}; due {due}"
