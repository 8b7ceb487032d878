"""The segment filter language: text -> typed AST -> (store) parameterised SQL.

```
platform = 'apns' and tag.plan in ('pro', 'team')
  and app_version >= '2.3.0' and last_seen > now - 30d
  and not (locale = 'de-DE' or timezone = 'Europe/Berlin')
```

Grammar (keywords are case-insensitive; `not` binds tighter than `and`,
which binds tighter than `or`):

```
expr      := and ('or' and)*
and       := unary ('and' unary)*
unary     := 'not' unary | '(' expr ')' | predicate
predicate := field ( op value | 'in' list | 'not' 'in' list | 'exists' )
op        := '=' | '!=' | '<' | '<=' | '>' | '>='
value     := string | 'now' [ '-' <n>('m'|'h'|'d') ]
list      := '(' string (',' string)* ')'
string    := '...' or "..." with backslash escapes \\ \' \"
field     := platform | locale | timezone | app_version | user_id
           | last_seen | created_at | topic | tag.<name>
```

Semantics are two-valued: a comparison with a value the device lacks (no
locale, no such tag) is false, and `!=` / `not in` are exactly the negations
of `=` / `in`, so they include devices that lack the value. `app_version`
compares as a version (`clarion.model.version`); `last_seen` and `created_at`
take `now - <n>(m|h|d)` or a quoted ISO 8601 instant; `topic = 'x'` means
"subscribed to x" and takes only `=`, `!=`, `in`, `not in`, `exists`.

A bad expression raises `FilterSyntaxError` with the 0-based character
position and what was expected there. `print_filter` writes an AST back as
text that parses to the same AST.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

MAX_FILTER_LENGTH = 4000
MAX_DEPTH = 40
MAX_LIST = 1000
MAX_AGO_DAYS = 36_600


class FilterSyntaxError(ValueError):
    """A filter that does not parse; `position` is the 0-based character offset."""

    def __init__(self, position: int, expected: str, found: str) -> None:
        super().__init__(f"at position {position}: expected {expected}, found {found}")
        self.position = position
        self.expected = expected
        self.found = found


class FieldKind(StrEnum):
    PLATFORM = "platform"
    LOCALE = "locale"
    TIMEZONE = "timezone"
    APP_VERSION = "app_version"
    USER_ID = "user_id"
    LAST_SEEN = "last_seen"
    CREATED_AT = "created_at"
    TOPIC = "topic"
    TAG = "tag"


TIME_FIELDS = frozenset({FieldKind.LAST_SEEN, FieldKind.CREATED_AT})
NEVER_MISSING = frozenset({FieldKind.PLATFORM, *TIME_FIELDS})


class Op(StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


NEGATED_OP = {Op.EQ: Op.NE, Op.NE: Op.EQ, Op.LT: Op.GE, Op.GE: Op.LT, Op.GT: Op.LE, Op.LE: Op.GT}


@dataclass(frozen=True, slots=True)
class Field:
    kind: FieldKind
    tag: str | None = None

    @property
    def text(self) -> str:
        return f"tag.{self.tag}" if self.kind is FieldKind.TAG else self.kind.value


@dataclass(frozen=True, slots=True)
class Ago:
    """`now - <amount><unit>`; `amount` 0 is plain `now`."""

    amount: int
    unit: str  # "m", "h" or "d"

    @property
    def delta(self) -> timedelta:
        return timedelta(**{_UNITS[self.unit]: self.amount})


_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
Value = str | Ago | datetime


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class Membership:
    field: Field
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Exists:
    field: Field


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Compare | Membership | Exists | Not | And | Or


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # word, tag, string, duration, number, op, "(", ")", ",", "-", end
    text: str
    position: int
    value: str = ""


_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<duration>\d+[mhd](?![A-Za-z0-9_]))"
    r"|(?P<tag>[Tt][Aa][Gg]\.[A-Za-z0-9_.:-]{1,64})(?![A-Za-z0-9_.:-])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<number>\d[A-Za-z0-9_.]*)"
    r"|(?P<op>!=|<=|>=|=|<|>)"
    r"|(?P<punct>[(),-])"
)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"'}


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an `end` token; raises `FilterSyntaxError`."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos] in "'\"":
            token, pos = _string(text, pos)
            tokens.append(token)
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FilterSyntaxError(pos, "a field, value or operator", repr(text[pos]))
        kind = match.lastgroup or ""
        if kind != "space":
            kind = match.group() if kind == "punct" else kind
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _string(text: str, start: int) -> tuple[Token, int]:
    quote, pos = text[start], start + 1
    chars: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == quote:
            return Token("string", text[start : pos + 1], start, "".join(chars)), pos + 1
        if char == "\\":
            escaped = text[pos + 1 : pos + 2]
            if escaped not in _ESCAPES:
                raise FilterSyntaxError(pos, "one of \\\\ \\' \\\" after a backslash", "\\")
            chars.append(_ESCAPES[escaped])
            pos += 2
            continue
        chars.append(char)
        pos += 1
    raise FilterSyntaxError(len(text), f"a closing {quote}", "the end of the filter")


def parse_filter(text: str) -> Node:
    """The AST of a filter expression; raises `FilterSyntaxError`."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(MAX_FILTER_LENGTH, "the end of the filter", "more text")
    bad = _UNSTORABLE.search(text)
    if bad is not None:
        raise FilterSyntaxError(bad.start(), "text without NUL or lone surrogates", "one")
    return _Parser(tokenize(text)).parse()


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _value_text(value: Value) -> str:
    if isinstance(value, Ago):
        return "now" if value.amount == 0 else f"now - {value.amount}{value.unit}"
    if isinstance(value, datetime):
        return quote(value.isoformat())
    return quote(value)


def print_filter(node: Node) -> str:
    """Canonical text for `node`; `parse_filter(print_filter(n)) == n`."""
    match node:
        case Compare(field, op, value):
            return f"{field.text} {op.value} {_value_text(value)}"
        case Membership(field, values, negated):
            listed = ", ".join(quote(v) for v in values)
            return f"{field.text} {'not in' if negated else 'in'} ({listed})"
        case Exists(field):
            return f"{field.text} exists"
        case Not(operand):
            inner = print_filter(operand)
            return f"not ({inner})" if isinstance(operand, And | Or) else f"not {inner}"
        case And(operands):
            return " and ".join(_grouped(o) for o in operands)
        case Or(operands):
            return " or ".join(_grouped(o) for o in operands)
    raise TypeError(f"not a filter node: {node!r}")


def _grouped(node: Node) -> str:
    text = print_filter(node)
    return f"({text})" if isinstance(node, And | Or) else text


_FIELDS = {kind.value: kind for kind in FieldKind if kind is not FieldKind.TAG}
_FIELD_LIST = "a field (platform, locale, timezone, app_version, user_id, last_seen, "
_FIELD_LIST += "created_at, topic, tag.<name>), 'not' or '('"
_ISO_EXPECTED = "an ISO 8601 instant with a zone, like '2026-01-31T00:00:00Z'"


class _Parser:
    """Recursive descent over the tokens; one method per grammar rule."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.current
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def keyword(self, word: str) -> bool:
        return self.current.kind == "word" and self.current.text.lower() == word

    def fail(self, expected: str) -> FilterSyntaxError:
        token = self.current
        found = "the end of the filter" if token.kind == "end" else repr(token.text)
        return FilterSyntaxError(token.position, expected, found)

    def parse(self) -> Node:
        node = self.disjunction()
        if self.current.kind != "end":
            raise self.fail("'and', 'or' or the end of the filter")
        return node

    def disjunction(self) -> Node:
        operands = [self.conjunction()]
        while self.keyword("or"):
            self.advance()
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Node:
        operands = [self.unary()]
        while self.keyword("and"):
            self.advance()
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Node:
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"a simpler filter (at most {MAX_DEPTH} nested 'not' or '(')")
        self.depth += 1
        try:
            if self.keyword("not"):
                self.advance()
                return Not(self.unary())
            if self.current.kind == "(":
                self.advance()
                node = self.disjunction()
                if self.current.kind != ")":
                    raise self.fail("')', 'and' or 'or'")
                self.advance()
                return node
            return self.predicate()
        finally:
            self.depth -= 1

    def field(self) -> Field:
        token = self.current
        if token.kind == "tag":
            self.advance()
            return Field(FieldKind.TAG, token.text[4:])
        if token.kind == "word" and token.text.lower() in _FIELDS:
            self.advance()
            return Field(_FIELDS[token.text.lower()])
        raise self.fail(_FIELD_LIST)

    def predicate(self) -> Node:
        field = self.field()
        if self.keyword("exists"):
            self.advance()
            return Exists(field)
        negated = self.keyword("not")
        if negated:
            self.advance()
            if not self.keyword("in"):
                raise self.fail("'in' after 'not'")
        if self.keyword("in"):
            if field.kind in TIME_FIELDS:
                raise self.fail(f"=, !=, <, <=, >, >= or exists after {field.text}")
            self.advance()
            return Membership(field, self.listed(), negated)
        if self.current.kind != "op":
            raise self.fail("an operator: =, !=, <, <=, >, >=, in, not in or exists")
        if field.kind is FieldKind.TOPIC and self.current.text not in ("=", "!="):
            raise self.fail("=, !=, in, not in or exists after topic")
        op = Op(self.advance().text)
        return Compare(field, op, self.value(field))

    def value(self, field: Field) -> Value:
        token = self.current
        if field.kind not in TIME_FIELDS:
            if token.kind != "string":
                raise self.fail("a quoted string")
            self.advance()
            return token.value
        if self.keyword("now"):
            self.advance()
            return self.ago()
        if token.kind != "string":
            raise self.fail("now, now - <n>(m|h|d) or a quoted ISO 8601 instant")
        try:
            moment = datetime.fromisoformat(token.value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise self.fail(_ISO_EXPECTED)
        self.advance()
        return moment.astimezone(UTC)

    def ago(self) -> Ago:
        if self.current.kind != "-":
            return Ago(0, "m")
        self.advance()
        token = self.current
        if token.kind != "duration":
            raise self.fail("a duration like 30d, 12h or 15m")
        amount, unit = int(token.text[:-1]), token.text[-1]
        if Ago(min(amount, 10**9), unit).delta > timedelta(days=MAX_AGO_DAYS):
            raise self.fail(f"a duration of at most {MAX_AGO_DAYS} days")
        self.advance()
        return Ago(amount, unit)

    def listed(self) -> tuple[str, ...]:
        if self.current.kind != "(":
            raise self.fail("'(' starting a list of quoted strings")
        self.advance()
        values: list[str] = []
        while True:
            if self.current.kind != "string":
                raise self.fail("a quoted string")
            if len(values) == MAX_LIST:
                raise self.fail(f"at most {MAX_LIST} values in a list")
            values.append(self.advance().value)
            if self.current.kind == ")":
                self.advance()
                return tuple(values)
            if self.current.kind != ",":
                raise self.fail("',' or ')'")
            self.advance()
