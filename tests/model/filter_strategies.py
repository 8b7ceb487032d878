"""Random filter ASTs and a pure-Python oracle of the filter language's semantics."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from clarion.model.filter import (
    TIME_FIELDS,
    Ago,
    And,
    Compare,
    Exists,
    Field,
    FieldKind,
    Membership,
    Node,
    Not,
    Op,
    Or,
)
from clarion.model.version import version_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PLATFORMS = ["apns", "fcm", "webpush"]
LOCALES = ["fr", "fr-CA", "de-DE", "en"]
TIMEZONES = ["Europe/Paris", "Europe/Berlin", "UTC"]
VERSIONS = ["2.9.1", "2.10.0", "2.3", "2.3.0", "2.3.0-beta", "10.0", "beta", "1.0.0+7"]
USERS = ["u-1", "u-2", "u-3"]
TAG_NAMES = ["plan", "first_name", "a.b:c-d"]
TAG_VALUES = ["pro", "team", "free", "Zoé", "o'brien", ""]
TOPICS = ["news", "sport", "deals"]
# Odd values a user might type: quotes, backslashes, SQL, non-ASCII.
ODD = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)

_POOLS: dict[FieldKind, list[str]] = {
    FieldKind.PLATFORM: PLATFORMS,
    FieldKind.LOCALE: LOCALES,
    FieldKind.TIMEZONE: TIMEZONES,
    FieldKind.APP_VERSION: VERSIONS,
    FieldKind.USER_ID: USERS,
    FieldKind.TOPIC: TOPICS,
    FieldKind.TAG: TAG_VALUES,
}


@dataclass(frozen=True)
class FakeDevice:
    """What the oracle knows of a device (the store test writes the same rows)."""

    id: str
    platform: str
    locale: str | None
    timezone: str | None
    app_version: str | None
    user_id: str | None
    last_seen: datetime
    created_at: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    topics: frozenset[str] = frozenset()


fields = st.one_of(
    st.sampled_from([k for k in FieldKind if k is not FieldKind.TAG]).map(Field),
    st.sampled_from(TAG_NAMES).map(lambda name: Field(FieldKind.TAG, name)),
)


def _text_for(kind: FieldKind) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_POOLS[kind]), ODD)


@st.composite
def leaves(draw: st.DrawFn) -> Node:
    target = draw(fields)
    kind = target.kind
    shape = draw(st.sampled_from(["compare", "in", "exists"]))
    if shape == "exists":
        return Exists(target)
    if kind in TIME_FIELDS:
        op = draw(st.sampled_from(list(Op)))
        if draw(st.booleans()):
            return Compare(target, op, Ago(draw(st.integers(0, 100)), draw(st.sampled_from("mhd"))))
        moment = NOW - timedelta(days=draw(st.integers(-5, 100)), hours=draw(st.integers(0, 23)))
        return Compare(target, op, moment)
    if shape == "in":
        values = draw(st.lists(_text_for(kind), min_size=1, max_size=4))
        return Membership(target, tuple(values), draw(st.booleans()))
    ops = [Op.EQ, Op.NE] if kind is FieldKind.TOPIC else list(Op)
    return Compare(target, draw(st.sampled_from(ops)), draw(_text_for(kind)))


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    group = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(children.map(Not), group.map(And), group.map(Or))


filters: st.SearchStrategy[Node] = st.recursive(leaves(), _extend, max_leaves=8)

_OPS: dict[Op, Any] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


def _actual(device: FakeDevice, target: Field) -> Any:
    if target.kind is FieldKind.TAG:
        return device.tags.get(str(target.tag))
    if target.kind is FieldKind.APP_VERSION:
        return version_key(device.app_version)
    return getattr(device, target.kind.value)


def _operand(target: Field, value: Any, now: datetime) -> Any:
    if isinstance(value, Ago):
        return now - value.delta
    return version_key(value) if target.kind is FieldKind.APP_VERSION else value


def evaluate(node: Node, device: FakeDevice, now: datetime = NOW) -> bool:
    """The documented two-valued semantics, written independently of the SQL compiler."""
    match node:
        case Not(inner):
            return not evaluate(inner, device, now)
        case And(items):
            return all(evaluate(item, device, now) for item in items)
        case Or(items):
            return any(evaluate(item, device, now) for item in items)
        case Exists(target):
            if target.kind is FieldKind.TOPIC:
                return bool(device.topics)
            return _actual(device, target) is not None
        case Membership(target, values, negated):
            if target.kind is FieldKind.TOPIC:
                found = bool(device.topics & set(values))
            else:
                actual = _actual(device, target)
                found = actual is not None and actual in {_operand(target, v, now) for v in values}
            return not found if negated else found
        case Compare(target, op, value):
            if target.kind is FieldKind.TOPIC:
                return (value in device.topics) == (op is Op.EQ)
            actual = _actual(device, target)
            if op is Op.NE:
                return actual is None or actual != _operand(target, value, now)
            return actual is not None and bool(_OPS[op](actual, _operand(target, value, now)))
    raise TypeError(node)
