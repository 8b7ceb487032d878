"""The filter language: parsing, precedence, quoting, error positions, printing, versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.model.filter import (
    MAX_DEPTH,
    Ago,
    And,
    Compare,
    Exists,
    Field,
    FieldKind,
    FilterSyntaxError,
    Membership,
    Not,
    Op,
    Or,
    parse_filter,
    print_filter,
)
from clarion.model.version import version_key
from tests.model.filter_strategies import filters

PLATFORM = Field(FieldKind.PLATFORM)
LOCALE = Field(FieldKind.LOCALE)
PLAN = Field(FieldKind.TAG, "plan")


def test_the_design_example_parses_to_the_expected_tree() -> None:
    node = parse_filter(
        "platform = 'apns' and tag.plan in ('pro', 'team')\n"
        "  and app_version >= '2.3.0' and last_seen > now - 30d\n"
        "  and not (locale = 'de-DE' or timezone = 'Europe/Berlin')"
    )
    assert node == And(
        (
            Compare(PLATFORM, Op.EQ, "apns"),
            Membership(PLAN, ("pro", "team")),
            Compare(Field(FieldKind.APP_VERSION), Op.GE, "2.3.0"),
            Compare(Field(FieldKind.LAST_SEEN), Op.GT, Ago(30, "d")),
            Not(
                Or(
                    (
                        Compare(LOCALE, Op.EQ, "de-DE"),
                        Compare(Field(FieldKind.TIMEZONE), Op.EQ, "Europe/Berlin"),
                    )
                )
            ),
        )
    )


@pytest.mark.parametrize("op", list(Op))
def test_every_comparison_operator_parses(op: Op) -> None:
    assert parse_filter(f"user_id {op.value} 'u-1'") == Compare(Field(FieldKind.USER_ID), op, "u-1")


def test_in_not_in_and_exists() -> None:
    assert parse_filter("locale not in ('fr', 'de')") == Membership(LOCALE, ("fr", "de"), True)
    assert parse_filter("tag.plan exists") == Exists(PLAN)
    assert parse_filter("topic in ('news')") == Membership(Field(FieldKind.TOPIC), ("news",))


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    a, b, c = (Compare(PLATFORM, Op.EQ, x) for x in "abc")
    assert parse_filter("platform = 'a' or platform = 'b' and platform = 'c'") == Or(
        (a, And((b, c)))
    )
    assert parse_filter("not platform = 'a' and platform = 'b'") == And((Not(a), b))
    assert parse_filter("(platform = 'a' or platform = 'b') and platform = 'c'") == And(
        (Or((a, b)), c)
    )


def test_keywords_are_case_insensitive() -> None:
    assert parse_filter("PLATFORM = 'a' AND NOT Locale EXISTS") == And(
        (Compare(PLATFORM, Op.EQ, "a"), Not(Exists(LOCALE)))
    )


def test_quotes_and_escapes() -> None:
    assert parse_filter(r"""tag.plan = 'o\'brien'""") == Compare(PLAN, Op.EQ, "o'brien")
    assert parse_filter(r"""tag.plan = "say \"hi\"" """) == Compare(PLAN, Op.EQ, 'say "hi"')
    assert parse_filter(r"tag.plan = 'back\\slash'") == Compare(PLAN, Op.EQ, "back\\slash")
    assert parse_filter('tag.plan = "it\'s"') == Compare(PLAN, Op.EQ, "it's")


def test_tag_names_may_hold_dots_colons_and_dashes() -> None:
    assert parse_filter("tag.a.b:c-d = 'x'") == Compare(Field(FieldKind.TAG, "a.b:c-d"), Op.EQ, "x")


def test_time_fields_take_now_minus_a_duration_or_an_instant() -> None:
    assert parse_filter("created_at <= now") == Compare(
        Field(FieldKind.CREATED_AT), Op.LE, Ago(0, "m")
    )
    assert parse_filter("last_seen > now - 15m").value == Ago(15, "m")  # type: ignore[union-attr]
    assert parse_filter("last_seen > now - 12h").value == Ago(12, "h")  # type: ignore[union-attr]
    instant = parse_filter("last_seen > '2026-01-31T01:00:00+01:00'")
    assert instant.value == datetime(2026, 1, 31, tzinfo=UTC)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("", 0, "a field"),
        ("platform", 8, "an operator"),
        ("platform =", 10, "a quoted string"),
        ("platform = apns", 11, "a quoted string"),
        ("platform = 'apns' and", 21, "a field"),
        ("platform = 'apns' locale = 'fr'", 18, "'and', 'or'"),
        ("(platform = 'apns'", 18, "')'"),
        ("platform = 'apns", 16, "a closing '"),
        (r"platform = 'a\n'", 13, "after a backslash"),
        ("colour = 'red'", 0, "a field"),
        ("topic > 'news'", 6, "after topic"),
        ("last_seen > now - 30", 18, "a duration"),
        ("last_seen > now - 30y", 18, "a duration"),
        ("last_seen > '2026-01-01'", 12, "ISO 8601 instant with a zone"),
        ("last_seen in ('a')", 10, "after last_seen"),
        ("locale not ('fr')", 11, "'in' after 'not'"),
        ("locale in ('fr' 'de')", 16, "',' or ')'"),
        ("locale in ()", 11, "a quoted string"),
        ("locale = 'fr' ; drop table devices", 14, "a field, value or operator"),
        ("last_seen > now - 99999999d", 18, "at most"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(
    text: str, position: int, expected: str
) -> None:
    with pytest.raises(FilterSyntaxError) as raised:
        parse_filter(text)
    assert raised.value.position == position
    assert expected in raised.value.expected
    assert f"at position {position}" in str(raised.value)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(FilterSyntaxError, match="nested"):
        parse_filter("(" * 500 + "platform = 'a'" + ")" * 500)
    with pytest.raises(FilterSyntaxError):
        parse_filter("not " * (MAX_DEPTH + 1) + "platform = 'a'")


def test_nul_characters_are_refused_where_they_stand() -> None:
    with pytest.raises(FilterSyntaxError) as raised:
        parse_filter("tag.plan = 'a\x00'")
    assert raised.value.position == 13


@settings(max_examples=300)
@given(filters)
def test_printing_then_parsing_gives_the_same_tree(node: And) -> None:
    assert parse_filter(print_filter(node)) == node


@settings(max_examples=500)
@given(st.text(max_size=80))
def test_any_text_either_parses_or_is_a_syntax_error(text: str) -> None:
    try:
        parse_filter(text)
    except FilterSyntaxError as error:
        assert 0 <= error.position <= len(text)


TOKENS = st.sampled_from(
    ["platform", "tag.plan", "topic", "last_seen", "=", "!=", "<", ">=", "in", "not",
     "and", "or", "exists", "(", ")", ",", "'x'", '"y"', "now", "-", "30d", "'", "\\", ";"]
)  # fmt: skip


@settings(max_examples=500)
@given(st.lists(TOKENS, max_size=14))
def test_any_token_soup_either_parses_or_is_a_syntax_error(tokens: list[str]) -> None:
    text = " ".join(tokens)
    try:
        node = parse_filter(text)
    except FilterSyntaxError as error:
        assert 0 <= error.position <= len(text)
    else:
        assert parse_filter(print_filter(node)) == node


def test_versions_compare_as_versions() -> None:
    ordered = ["beta", "1.0", "2.3.0-alpha", "2.3.0-beta", "2.3", "2.3.0.1", "2.9.1", "2.10.0"]
    keys = [version_key(v) for v in ordered]
    assert keys == sorted(keys, key=lambda k: str(k).encode())
    assert version_key("2.3") == version_key("2.3.0") == version_key("v2.3.0+build.7")


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
)
def test_numeric_version_keys_order_like_their_numbers(a: list[int], b: list[int]) -> None:
    def trimmed(parts: list[int]) -> list[int]:
        while len(parts) > 1 and parts[-1] == 0:
            parts = parts[:-1]
        return parts

    key_a = str(version_key(".".join(map(str, a)))).encode()
    key_b = str(version_key(".".join(map(str, b)))).encode()
    assert (key_a < key_b) == (trimmed(a) < trimmed(b))
    assert (key_a == key_b) == (trimmed(a) == trimmed(b))
