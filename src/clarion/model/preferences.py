"""A recipient's preferences and an app's defaults: categories, quiet hours, caps.

Stored and validated here; the pipeline enforces them (see the respect issue).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from typing import Any

from clarion.model.errors import FieldError

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class CapPeriod(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in local time; `start > end` wraps midnight (22:00-08:00)."""

    start: time
    end: time

    def as_json(self) -> dict[str, str]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most `max` pushes per rolling `per`, for one category or (None) overall."""

    max: int
    per: CapPeriod
    category: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"max": self.max, "per": self.per.value}
        if self.category is not None:
            data["category"] = self.category
        return data


def parse_hhmm(value: Any, field: str) -> time:
    if not isinstance(value, str) or not (match := _HHMM.match(value)):
        raise FieldError(field, "must be a 24-hour time 'HH:MM'")
    return time(int(match.group(1)), int(match.group(2)))


def parse_quiet_hours(value: Any, field: str = "quiet_hours") -> QuietHours | None:
    """`{"start": "22:00", "end": "08:00"}`, or null for none."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise FieldError(field, 'must be {"start": "HH:MM", "end": "HH:MM"} or null')
    start = parse_hhmm(value.get("start"), f"{field}.start")
    end = parse_hhmm(value.get("end"), f"{field}.end")
    if start == end:
        raise FieldError(field, "start and end must differ (use null for no quiet hours)")
    return QuietHours(start, end)


def check_category_name(name: Any, field: str) -> str:
    if not isinstance(name, str) or not _CATEGORY.match(name):
        raise FieldError(field, "category names are 1-64 of a-z 0-9 _ . - starting alphanumeric")
    return name


def parse_caps(value: Any, field: str = "caps") -> tuple[FrequencyCap, ...]:
    """`[{"max": 3, "per": "day", "category": "marketing"}, {"max": 10, "per": "week"}]`."""
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise FieldError(field, "must be a list of {max, per, category?}")
    caps = []
    for index, item in enumerate(value):
        where = f"{field}.{index}"
        if not isinstance(item, Mapping):
            raise FieldError(where, "must be {max, per, category?}")
        limit = item.get("max")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 10_000:
            raise FieldError(f"{where}.max", "must be an integer from 0 to 10000")
        try:
            per = CapPeriod(str(item.get("per")))
        except ValueError as exc:
            raise FieldError(f"{where}.per", "must be one of hour, day, week") from exc
        category = item.get("category")
        if category is not None:
            check_category_name(category, f"{where}.category")
        caps.append(FrequencyCap(limit, per, category))
    return tuple(caps)


def parse_category_choices(value: Any, field: str = "categories") -> dict[str, bool]:
    """A user's opt-ins: `{"marketing": false, "orders": true}`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError(field, "must map category names to true or false")
    for name, choice in value.items():
        check_category_name(name, f"{field}.{name}")
        if not isinstance(choice, bool):
            raise FieldError(f"{field}.{name}", "must be true or false")
    return dict(value)


@dataclass(frozen=True, slots=True)
class UserPreferences:
    """What one user chose; None means "the app's default"."""

    categories: Mapping[str, bool]
    quiet_hours: QuietHours | None
    quiet_hours_set: bool
    timezone: str | None
    caps: tuple[FrequencyCap, ...] | None
