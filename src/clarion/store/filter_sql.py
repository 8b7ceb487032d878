"""A filter AST compiled to a parameterised condition on `devices`, for SQLite and PostgreSQL.

Every user value travels as a bound parameter; the only text that reaches
the SQL is the fixed column and operator set of this module. Negations are
pushed down to the leaves (negation normal form) with the missing-value
case spelled out (`locale IS NULL OR locale != :v`), so SQL's three-valued
logic gives exactly the two-valued semantics the filter language documents.

Column choices, measured on PostgreSQL 15 with 1,000,000 devices (a tenth in
another app) for `platform = 'apns' and tag.plan = 'pro' and last_seen > now - 30d`:
the JSONB `tags ->> 'plan'` read over a bitmap scan of `(app_id, platform)`
counted in ~100 ms (~150 ms as a plain sequential scan); a GIN
`jsonb_path_ops` index queried with `@>` gave ~150 ms at this selectivity
(20 % pro) and costs every tag write, so tags stay a JSON column read with
`->>` (PostgreSQL) / `json_extract` (SQLite) and no tag index. `bench/filter_count.py`
prints the figures on both backends.

`app_version` compares `app_version_key` (see `clarion.model.version`) in byte
order: PostgreSQL strings are compared under the `C` collation for `<`/`>`, so the
database's locale cannot reorder them; SQLite compares bytes already.
"""

from __future__ import annotations

import operator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

from clarion.model.filter import (
    NEGATED_OP,
    NEVER_MISSING,
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
    Value,
)
from clarion.model.version import version_key
from clarion.store.schema import device_topics, devices

_COLUMNS = {
    FieldKind.PLATFORM: devices.c.platform,
    FieldKind.LOCALE: devices.c.locale,
    FieldKind.TIMEZONE: devices.c.timezone,
    FieldKind.APP_VERSION: devices.c.app_version_key,
    FieldKind.USER_ID: devices.c.user_id,
    FieldKind.LAST_SEEN: devices.c.last_seen,
    FieldKind.CREATED_AT: devices.c.created_at,
}
_ORDERING = (Op.LT, Op.LE, Op.GT, Op.GE)


class ByteOrder(GenericFunction[str]):
    """A string expression compared in byte (code point) order on every backend."""

    type = sa.String()
    inherit_cache = True


@compiles(ByteOrder)
def _byte_order_default(element: ByteOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(ByteOrder, "postgresql")
def _byte_order_postgresql(element: ByteOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


def filter_condition(app_id: str, node: Node, *, now: datetime) -> sa.ColumnElement[bool]:
    """The condition on `devices` (scoped to `app_id`) for the devices `node` selects."""
    return sa.and_(devices.c.app_id == app_id, _Compiler(app_id, now).node(node, False))


class _Compiler:
    def __init__(self, app_id: str, now: datetime) -> None:
        self.app_id = app_id
        self.now = now

    def node(self, node: Node, negated: bool) -> sa.ColumnElement[bool]:
        match node:
            case Not(operand):
                return self.node(operand, not negated)
            case And(operands) | Or(operands):
                parts = [self.node(operand, negated) for operand in operands]
                conjunction = isinstance(node, And) != negated
                return sa.and_(*parts) if conjunction else sa.or_(*parts)
            case Compare() | Membership() | Exists() if node.field.kind is FieldKind.TOPIC:
                return self.topic(node, negated)
            case Compare(field, op, value):
                return self.compare(field, op, value, negated)
            case Membership(field, values, negated_in):
                column = self.column(field)
                listed = [self.operand(field, value) for value in values]
                if negated_in == negated:
                    return column.in_(listed)
                return self.or_missing(field, column, column.not_in(listed))
            case Exists(field):
                column = self.column(field)
                return column.is_(None) if negated else column.is_not(None)
        raise TypeError(f"not a filter node: {node!r}")

    def column(self, field: Field) -> sa.ColumnElement[Any]:
        if field.kind is FieldKind.TAG:
            tag: sa.ColumnElement[Any] = devices.c.tags[field.tag].as_string()
            return tag
        return _COLUMNS[field.kind]

    def operand(self, field: Field, value: Value) -> Any:
        if isinstance(value, Ago):
            return self.now - value.delta
        if field.kind is FieldKind.APP_VERSION and isinstance(value, str):
            return version_key(value)
        return value

    def or_missing(
        self, field: Field, column: sa.ColumnElement[Any], condition: sa.ColumnElement[bool]
    ) -> sa.ColumnElement[bool]:
        """`condition`, also true where the device lacks the value (`!=`, `not in`)."""
        if field.kind in NEVER_MISSING:
            return condition
        return sa.or_(column.is_(None), condition)

    def compare(self, field: Field, op: Op, value: Value, negated: bool) -> sa.ColumnElement[bool]:
        """`field op value`, or its negation; a missing value satisfies only `!=` and `not =`."""
        with_missing = (op is Op.NE) != negated
        op = NEGATED_OP[op] if negated else op
        column = self.column(field)
        operand = self.operand(field, value)
        if op in _ORDERING and field.kind not in (FieldKind.LAST_SEEN, FieldKind.CREATED_AT):
            column, operand = ByteOrder(column), ByteOrder(sa.literal(operand))
        condition: sa.ColumnElement[bool] = _SQL_OPS[op](column, operand)
        return self.or_missing(field, column, condition) if with_missing else condition

    def topic(self, node: Compare | Membership | Exists, negated: bool) -> sa.ColumnElement[bool]:
        """`topic = 'x'`: subscribed to x; the subquery's ids are never NULL."""
        subscribed = sa.select(device_topics.c.device_id).where(
            device_topics.c.app_id == self.app_id
        )
        wanted = True
        if isinstance(node, Compare):
            subscribed = subscribed.where(device_topics.c.topic == node.value)
            wanted = node.op is Op.EQ
        elif isinstance(node, Membership):
            subscribed = subscribed.where(device_topics.c.topic.in_(list(node.values)))
            wanted = not node.negated
        if wanted != negated:
            return devices.c.id.in_(subscribed)
        return devices.c.id.not_in(subscribed)


_SQL_OPS = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}
