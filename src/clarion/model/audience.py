"""Who a notification goes to: exactly one of the audience forms of the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clarion.model.device import check_topic, check_user_id
from clarion.model.errors import FieldError

MAX_LISTED = 10_000


class AudienceKind(StrEnum):
    DEVICES = "devices"
    USERS = "users"
    TOPIC = "topic"
    SEGMENT = "segment"
    FILTER = "filter"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Audience:
    """One audience form; `values` holds ids (devices, users) or one name/expression.

    A resolved segment holds `(segment_id, filter)`: the filter as it was when
    the notification was accepted, stored as `{"segment": {"id", "filter"}}`.
    """

    kind: AudienceKind
    values: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        if self.kind is AudienceKind.ALL:
            return {"all": True}
        if self.kind in (AudienceKind.DEVICES, AudienceKind.USERS):
            return {self.kind.value: list(self.values)}
        if self.kind is AudienceKind.SEGMENT and len(self.values) == 2:
            return {"segment": {"id": self.values[0], "filter": self.values[1]}}
        return {self.kind.value: self.values[0]}


def parse_audience(value: Any, field: str = "audience") -> Audience:
    """`{"users": [...]}`, `{"devices": [...]}`, `{"topic": "..."}`, `{"segment": "..."}`,
    `{"filter": "..."}` or `{"all": true}` — exactly one."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise FieldError(
            field, "must be exactly one of devices, users, topic, segment, filter, all"
        )
    ((name, raw),) = value.items()
    try:
        kind = AudienceKind(name)
    except ValueError as exc:
        raise FieldError(f"{field}.{name}", "is not an audience form") from exc
    where = f"{field}.{name}"
    if kind is AudienceKind.ALL:
        if raw is not True:
            raise FieldError(where, "must be true")
        return Audience(kind)
    if kind in (AudienceKind.DEVICES, AudienceKind.USERS):
        return _listed(kind, raw, where)
    if kind is AudienceKind.SEGMENT and isinstance(raw, Mapping):
        return _resolved_segment(raw, where)
    if not isinstance(raw, str) or not raw.strip():
        raise FieldError(where, "must be a non-empty string")
    if kind is AudienceKind.TOPIC:
        check_topic(raw, where)
    return Audience(kind, (raw,))


def _listed(kind: AudienceKind, raw: Any, where: str) -> Audience:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_LISTED:
        raise FieldError(where, f"must be a list of 1 to {MAX_LISTED} ids")
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise FieldError(f"{where}.{index}", "must be a string")
        if kind is AudienceKind.USERS:
            check_user_id(item, f"{where}.{index}")
    return Audience(kind, tuple(dict.fromkeys(raw)))


def _resolved_segment(raw: Mapping[str, Any], where: str) -> Audience:
    """The stored form of a segment audience: its id and its filter when accepted."""
    segment_id, text = raw.get("id"), raw.get("filter")
    if set(raw) != {"id", "filter"} or not isinstance(segment_id, str):
        raise FieldError(where, "must be a segment id")
    if not isinstance(text, str):
        raise FieldError(where, "must be a segment id")
    return Audience(AudienceKind.SEGMENT, (segment_id, text))
