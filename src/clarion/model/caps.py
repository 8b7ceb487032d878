"""Frequency caps: how often one person hears from an app, over rolling windows.

A cap such as "3 per day for `marketing`" or "10 per week" (no category:
overall) counts the pushes the user was actually sent in the window ending
now: the last 60 minutes, 24 hours or 7 days, not calendar days. Only pushes
in categories that count toward caps are counted, and only those are capped:
a category with `counts_toward_caps` off (order updates, say) is never held
back by a cap and never uses one up. A push without a category counts.

The store supplies the recent sends (`SentPush`, at most `LONGEST_WINDOW`
old); these functions decide, so the planner and the sender share one rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clarion.model.app import Category
from clarion.model.preferences import CapPeriod, FrequencyCap

CAP_WINDOWS: Mapping[CapPeriod, timedelta] = {
    CapPeriod.HOUR: timedelta(hours=1),
    CapPeriod.DAY: timedelta(days=1),
    CapPeriod.WEEK: timedelta(days=7),
}
LONGEST_WINDOW = max(CAP_WINDOWS.values())


@dataclass(frozen=True, slots=True)
class SentPush:
    """One push the user was sent: when, and in which category (None: none named)."""

    at: datetime
    category: str | None = None


def effective_caps(
    app_caps: Sequence[FrequencyCap], user_caps: Sequence[FrequencyCap] | None
) -> tuple[FrequencyCap, ...]:
    """The app's caps, with each one the user set for the same category and period replacing it.

    The app's other caps still hold (they protect every recipient); a user
    may tighten or loosen the ones they chose, or add their own.
    """
    if not user_caps:
        return tuple(app_caps)
    chosen = {(cap.category, cap.per) for cap in user_caps}
    kept = [cap for cap in app_caps if (cap.category, cap.per) not in chosen]
    return (*kept, *user_caps)


def counts_toward_caps(category: Category | None) -> bool:
    """Whether a push in `category` uses up (and is held back by) caps."""
    return category is None or category.counts_toward_caps


@dataclass(frozen=True, slots=True)
class CapCounts:
    """How many counted pushes fell in each rolling window ending now.

    `overall[period]` counts all of them; `by_category[(name, period)]` those
    in one category. Missing keys are zero.
    """

    overall: Mapping[CapPeriod, int] = field(default_factory=dict)
    by_category: Mapping[tuple[str, CapPeriod], int] = field(default_factory=dict)

    def count(self, category: str | None, per: CapPeriod) -> int:
        """The count a cap on `category` (None: overall) over `per` compares with its max."""
        if category is None:
            return self.overall.get(per, 0)
        return self.by_category.get((category, per), 0)


def count_recent(
    recent: Iterable[SentPush], now: datetime, categories: Iterable[Category] = ()
) -> CapCounts:
    """Count `recent` into the hour, day and week windows ending at `now`.

    A push exactly one period old has left that window; one stamped after
    `now` (another worker's clock ran ahead) is counted, erring towards fewer
    pushes. Pushes in the app's categories that do not count toward caps are
    skipped; a category the app no longer defines counts.
    """
    exempt = {category.name for category in categories if not category.counts_toward_caps}
    current = now.astimezone(UTC)
    overall: Counter[CapPeriod] = Counter()
    by_category: Counter[tuple[str, CapPeriod]] = Counter()
    for push in recent:
        if push.category in exempt:
            continue
        for per, window in CAP_WINDOWS.items():
            if push.at > current - window:
                overall[per] += 1
                if push.category is not None:
                    by_category[(push.category, per)] += 1
    return CapCounts(dict(overall), dict(by_category))


def cap_exceeded(
    caps: Iterable[FrequencyCap], category: Category | None, counts: CapCounts
) -> FrequencyCap | None:
    """The first cap one more push in `category` would break, or None when it may go."""
    if not counts_toward_caps(category):
        return None
    name = category.name if category is not None else None
    for cap in caps:
        applies = cap.category is None or cap.category == name
        if applies and counts.count(cap.category, cap.per) >= cap.max:
            return cap
    return None


def cap_blocking(
    caps: Iterable[FrequencyCap],
    category: Category | None,
    recent: Iterable[SentPush],
    now: datetime,
    categories: Iterable[Category] = (),
) -> FrequencyCap | None:
    """Whether one more push in `category` at `now` is over a cap (the cap), given recent sends."""
    return cap_exceeded(caps, category, count_recent(recent, now, categories))
