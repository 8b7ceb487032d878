"""Frequency caps over rolling windows, and category opt-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.model.app import Category
from clarion.model.caps import (
    CAP_WINDOWS,
    LONGEST_WINDOW,
    CapCounts,
    SentPush,
    cap_blocking,
    cap_exceeded,
    count_recent,
    effective_caps,
)
from clarion.model.policy import category_allows, find_category
from clarion.model.preferences import CapPeriod, FrequencyCap

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
MARKETING = Category("marketing")
ORDERS = Category("orders", counts_toward_caps=False)
THREE_A_DAY = FrequencyCap(3, CapPeriod.DAY, "marketing")
TEN_A_WEEK = FrequencyCap(10, CapPeriod.WEEK)


def sent(hours_ago: float, category: str | None = "marketing") -> SentPush:
    return SentPush(NOW - timedelta(hours=hours_ago), category)


def test_fourth_marketing_push_in_a_day_is_over_the_cap() -> None:
    recent = [sent(1), sent(5), sent(20)]
    assert cap_blocking([THREE_A_DAY], MARKETING, recent, NOW) == THREE_A_DAY


def test_day_window_rolls_rather_than_resetting_at_midnight() -> None:
    recent = [sent(1), sent(5), sent(24)]
    assert cap_blocking([THREE_A_DAY], MARKETING, recent, NOW) is None
    assert cap_blocking([THREE_A_DAY], MARKETING, recent, NOW - timedelta(seconds=1)) is not None


def test_overall_cap_counts_every_counted_category_and_pushes_without_one() -> None:
    recent = [sent(hour, name) for hour, name in zip(range(10), ["news", None] * 5, strict=True)]
    assert cap_blocking([TEN_A_WEEK], MARKETING, recent, NOW) == TEN_A_WEEK
    assert cap_blocking([TEN_A_WEEK], None, recent, NOW) == TEN_A_WEEK
    assert cap_blocking([TEN_A_WEEK], MARKETING, recent[1:], NOW) is None


def test_category_cap_leaves_other_categories_alone() -> None:
    recent = [sent(1), sent(2), sent(3)]
    assert cap_blocking([THREE_A_DAY], Category("news"), recent, NOW) is None


def test_categories_that_do_not_count_are_never_capped_and_use_no_slot() -> None:
    caps = [FrequencyCap(1, CapPeriod.DAY), FrequencyCap(0, CapPeriod.WEEK, "orders")]
    assert cap_blocking(caps, ORDERS, [sent(1), sent(2)], NOW) is None
    recent = [sent(1, "orders"), sent(2, "orders")]
    assert cap_blocking(caps, MARKETING, recent, NOW, [MARKETING, ORDERS]) is None
    assert cap_blocking(caps, MARKETING, recent, NOW) == caps[0]  # orders unknown: counted


def test_zero_cap_blocks_everything_in_its_scope() -> None:
    assert cap_blocking([FrequencyCap(0, CapPeriod.HOUR)], MARKETING, [], NOW) is not None


def test_sends_stamped_after_now_still_count() -> None:
    assert cap_blocking([FrequencyCap(1, CapPeriod.HOUR)], None, [sent(-0.01)], NOW) is not None


def test_counts_per_window() -> None:
    counts = count_recent([sent(0.5), sent(2, None), sent(30, "news")], NOW)
    assert counts.count(None, CapPeriod.HOUR) == 1
    assert counts.count(None, CapPeriod.DAY) == 2
    assert counts.count(None, CapPeriod.WEEK) == 3
    assert counts.count("news", CapPeriod.DAY) == 0
    assert counts.count("news", CapPeriod.WEEK) == 1
    assert cap_exceeded([FrequencyCap(2, CapPeriod.DAY)], MARKETING, counts) is not None
    assert cap_exceeded([THREE_A_DAY], MARKETING, CapCounts()) is None
    assert timedelta(days=7) == LONGEST_WINDOW


def test_user_cap_replaces_the_apps_cap_for_the_same_category_and_period() -> None:
    mine = FrequencyCap(1, CapPeriod.DAY, "marketing")
    hourly = FrequencyCap(5, CapPeriod.HOUR)
    assert effective_caps([THREE_A_DAY, TEN_A_WEEK], None) == (THREE_A_DAY, TEN_A_WEEK)
    assert effective_caps([THREE_A_DAY, TEN_A_WEEK], []) == (THREE_A_DAY, TEN_A_WEEK)
    assert effective_caps([THREE_A_DAY, TEN_A_WEEK], [mine, hourly]) == (TEN_A_WEEK, mine, hourly)


names = st.sampled_from([None, "marketing", "news", "orders"])
caps_lists = st.lists(
    st.builds(FrequencyCap, st.integers(0, 4), st.sampled_from(list(CapPeriod)), names),
    min_size=1,
    max_size=4,
)
APP_CATEGORIES = (MARKETING, Category("news"), ORDERS)


def _counted_in(window_end: datetime, cap: FrequencyCap, pushes: list[SentPush]) -> int:
    start = window_end - CAP_WINDOWS[cap.per]
    return sum(
        1
        for push in pushes
        if start < push.at <= window_end
        and push.category != "orders"
        and (cap.category is None or push.category == cap.category)
    )


@given(
    caps_lists,
    st.lists(st.tuples(st.integers(0, 3 * 7 * 24 * 60), names), max_size=80),
)
@settings(max_examples=200, deadline=None)
def test_caps_applied_in_turn_never_let_more_than_max_into_any_rolling_window(
    caps: list[FrequencyCap], attempts: list[tuple[int, str | None]]
) -> None:
    delivered: list[SentPush] = []
    for minute, name in sorted(attempts, key=lambda attempt: attempt[0]):
        now = NOW + timedelta(minutes=minute)
        category = find_category(APP_CATEGORIES, name)
        blocked = cap_blocking(caps, category, delivered, now, APP_CATEGORIES)
        if blocked is None:
            delivered.append(SentPush(now, name))
        else:
            # held back only by a window that is really full
            assert name != "orders"
            assert _counted_in(now, blocked, delivered) >= blocked.max
    for cap in caps:
        for push in delivered:
            assert _counted_in(push.at, cap, delivered) <= cap.max, (cap, push)


# --- categories ----------------------------------------------------------------------


def test_user_choice_wins_over_the_category_default() -> None:
    opt_in = Category("tips", default_opt_in=False)
    assert category_allows(MARKETING, {})
    assert not category_allows(MARKETING, {"marketing": False})
    assert not category_allows(opt_in, {})
    assert category_allows(opt_in, {"tips": True})
    assert category_allows(opt_in, {"marketing": False, "tips": True})


def test_notification_without_a_category_is_allowed() -> None:
    assert category_allows(None, {"marketing": False})


def test_find_category_by_name() -> None:
    assert find_category(APP_CATEGORIES, "orders") is ORDERS
    assert find_category(APP_CATEGORIES, "gone") is None
    assert find_category(APP_CATEGORIES, None) is None
