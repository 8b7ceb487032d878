"""A send request, validated: audience, content, category, schedule, delivery options.

`parse_notification` turns the API's JSON into a `NotificationSpec` and
reports every bad field at once; `spec_json` is the canonical stored form
(also what an Idempotency-Key compares).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from clarion.model.audience import Audience, parse_audience
from clarion.model.content import Action, Content, LocalizedText
from clarion.model.errors import FieldError
from clarion.model.locale import check_locale
from clarion.model.message import Priority
from clarion.model.platform import Platform
from clarion.model.preferences import check_category_name, parse_hhmm

DEFAULT_TTL = 4 * 7 * 24 * 3600
MAX_TTL = DEFAULT_TTL
MAX_TEXT = 4000
MAX_SCHEDULE_AHEAD = timedelta(days=365)
_COLLAPSE = re.compile(r"^[\x21-\x7e]{1,64}$")
OVERRIDE_KEYS = tuple(p.value for p in Platform)


class QuietHoursMode(StrEnum):
    DEFER = "defer"
    DROP = "drop"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When: `send_at` (absolute), optional `local_time` ("HH:MM" in each recipient's zone)."""

    send_at: datetime
    local_time: str | None = None
    quiet_hours: QuietHoursMode = QuietHoursMode.DEFER
    throttle_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class NotificationSpec:
    audience: Audience
    content: Content
    schedule: Schedule
    category: str | None = None
    ttl: int = DEFAULT_TTL
    priority: Priority = Priority.HIGH
    collapse_key: str | None = None
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def expires_at(self) -> datetime:
        return self.schedule.send_at + timedelta(seconds=self.ttl)


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def check(self, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except FieldError as error:
            self.items.append(error)
            return None


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise FieldError(where, f"must be a string of at most {MAX_TEXT} characters")
    return value


def _url(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048 or ":" not in value:
        raise FieldError(where, "must be a URL (https://... or an app scheme like myapp://...)")
    return value


def _localized(value: Any, where: str) -> dict[str, LocalizedText]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError(where, "must map language tags to {title, subtitle, body}")
    result = {}
    for tag, text in value.items():
        check_locale(tag, f"{where}.{tag}")
        if not isinstance(text, Mapping) or set(text) - {"title", "subtitle", "body"}:
            raise FieldError(f"{where}.{tag}", "may hold only title, subtitle and body")
        result[tag] = LocalizedText(
            title=_text(text.get("title"), f"{where}.{tag}.title"),
            subtitle=_text(text.get("subtitle"), f"{where}.{tag}.subtitle"),
            body=_text(text.get("body"), f"{where}.{tag}.body"),
        )
    return result


def _actions(value: Any, where: str) -> tuple[Action, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 4:
        raise FieldError(where, "must be a list of at most 4 {id, title, url?}")
    actions = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise FieldError(f"{where}.{index}", "must be {id, title, url?}")
        title = _text(item.get("title"), f"{where}.{index}.title")
        if not title:
            raise FieldError(f"{where}.{index}.title", "is required")
        actions.append(Action(item["id"], title, _url(item.get("url"), f"{where}.{index}.url")))
    return tuple(actions)


_CONTENT_KEYS = {
    "title",
    "subtitle",
    "body",
    "image",
    "badge",
    "sound",
    "url",
    "data",
    "actions",
    "localized",
}


def parse_content(value: Any, errors: _Errors, where: str = "content") -> Content:
    if not isinstance(value, Mapping):
        errors.items.append(FieldError(where, "must be an object"))
        return Content()
    for unknown in sorted(set(value) - _CONTENT_KEYS):
        errors.items.append(FieldError(f"{where}.{unknown}", "is not a content field"))
    badge = value.get("badge")
    if badge is not None and (not isinstance(badge, int) or isinstance(badge, bool) or badge < 0):
        errors.items.append(FieldError(f"{where}.badge", "must be a whole number of 0 or more"))
        badge = None
    data = value.get("data") or {}
    if not isinstance(data, Mapping):
        errors.items.append(FieldError(f"{where}.data", "must be an object"))
        data = {}
    sound = value.get("sound")
    if sound is not None and (not isinstance(sound, str) or len(sound) > 256):
        errors.items.append(FieldError(f"{where}.sound", "must be a sound name"))
        sound = None
    content = Content(
        title=errors.check(_text, value.get("title"), f"{where}.title"),
        subtitle=errors.check(_text, value.get("subtitle"), f"{where}.subtitle"),
        body=errors.check(_text, value.get("body"), f"{where}.body"),
        image=errors.check(_url, value.get("image"), f"{where}.image"),
        badge=badge,
        sound=sound,
        url=errors.check(_url, value.get("url"), f"{where}.url"),
        data=dict(data),
        actions=errors.check(_actions, value.get("actions"), f"{where}.actions") or (),
        localized=errors.check(_localized, value.get("localized"), f"{where}.localized") or {},
    )
    return content


def _send_at(raw: Any, now: datetime, errors: _Errors) -> datetime:
    """An aware instant within a year; a past one means now."""
    if raw is None:
        return now
    try:
        parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        errors.items.append(FieldError("schedule.send_at", "must be an ISO 8601 instant"))
        return now
    if parsed.tzinfo is None:
        errors.items.append(
            FieldError("schedule.send_at", "must carry a zone, e.g. 2026-05-01T09:00:00Z")
        )
    elif parsed - now > MAX_SCHEDULE_AHEAD:
        errors.items.append(FieldError("schedule.send_at", "is more than a year ahead"))
    else:
        return max(parsed.astimezone(UTC), now)
    return now


def _schedule(value: Any, now: datetime, errors: _Errors) -> Schedule:
    if value is None:
        return Schedule(send_at=now)
    if not isinstance(value, Mapping):
        errors.items.append(FieldError("schedule", "must be an object"))
        return Schedule(send_at=now)
    for unknown in sorted(set(value) - SCHEDULE_KEYS):
        errors.items.append(FieldError(f"schedule.{unknown}", "is not a schedule field"))
    send_at = _send_at(value.get("send_at"), now, errors)
    local_time = value.get("local_time")
    if local_time is not None:
        errors.check(parse_hhmm, local_time, "schedule.local_time")
    mode = QuietHoursMode.DEFER
    if value.get("quiet_hours") is not None:
        try:
            mode = QuietHoursMode(value["quiet_hours"])
        except ValueError:
            errors.items.append(
                FieldError("schedule.quiet_hours", "must be one of defer, drop, ignore")
            )
    throttle = value.get("throttle_per_minute")
    if throttle is not None and (
        not isinstance(throttle, int)
        or isinstance(throttle, bool)
        or not 1 <= throttle <= MAX_THROTTLE
    ):
        errors.items.append(
            FieldError("schedule.throttle_per_minute", f"must be from 1 to {MAX_THROTTLE}")
        )
        throttle = None
    return Schedule(
        send_at=send_at, local_time=local_time, quiet_hours=mode, throttle_per_minute=throttle
    )


SCHEDULE_KEYS = {"send_at", "local_time", "quiet_hours", "throttle_per_minute"}
MAX_THROTTLE = 1_000_000

_TOP_KEYS = {
    "audience",
    "content",
    "category",
    "schedule",
    "ttl",
    "priority",
    "collapse_key",
    *OVERRIDE_KEYS,
}


def _options(
    body: Mapping[str, Any], errors: _Errors
) -> tuple[int, Priority, str | None, dict[str, dict[str, Any]]]:
    """ttl, priority, collapse key and per-platform overrides."""
    ttl = body.get("ttl", DEFAULT_TTL)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL:
        errors.items.append(FieldError("ttl", f"must be seconds from 0 to {MAX_TTL}"))
        ttl = DEFAULT_TTL
    priority = Priority.HIGH
    if body.get("priority") is not None:
        try:
            priority = Priority(body["priority"])
        except ValueError:
            errors.items.append(FieldError("priority", "must be high or normal"))
    collapse_key = body.get("collapse_key")
    if collapse_key is not None and (
        not isinstance(collapse_key, str) or not _COLLAPSE.match(collapse_key)
    ):
        errors.items.append(FieldError("collapse_key", "must be 1-64 printable ASCII characters"))
        collapse_key = None
    overrides = {}
    for name in OVERRIDE_KEYS:
        if body.get(name) is not None:
            if not isinstance(body[name], Mapping):
                errors.items.append(FieldError(name, "must be an object"))
            else:
                overrides[name] = dict(body[name])
    return ttl, priority, collapse_key, overrides


def parse_notification(body: Any, now: datetime) -> NotificationSpec:
    """The validated request; raises the first error after collecting all (see `.errors`)."""
    errors = _Errors()
    if not isinstance(body, Mapping):
        raise NotificationInvalid([FieldError("body", "must be a JSON object")])
    for unknown in sorted(set(body) - _TOP_KEYS):
        errors.items.append(FieldError(unknown, "is not a notification field"))
    audience = errors.check(parse_audience, body.get("audience"))
    content = parse_content(body.get("content"), errors)
    if body.get("content") is not None and not (
        content.title or content.body or content.data or content.badge is not None
    ):
        errors.items.append(FieldError("content", "needs a title, a body, data or a badge"))
    category = body.get("category")
    if category is not None:
        errors.check(check_category_name, category, "category")
    ttl, priority, collapse_key, overrides = _options(body, errors)
    schedule = _schedule(body.get("schedule"), now, errors)
    if errors.items:
        raise NotificationInvalid(errors.items)
    return NotificationSpec(
        audience=audience,
        content=content,
        schedule=schedule,
        category=category,
        ttl=ttl,
        priority=priority,
        collapse_key=collapse_key,
        overrides=overrides,
    )


class NotificationInvalid(ValueError):
    """Every bad field of a send request."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def content_json(content: Content) -> dict[str, Any]:
    data: dict[str, Any] = {
        key: getattr(content, key)
        for key in ("title", "subtitle", "body", "image", "badge", "sound", "url")
        if getattr(content, key) is not None
    }
    if content.data:
        data["data"] = dict(content.data)
    if content.actions:
        data["actions"] = [
            {k: v for k, v in (("id", a.id), ("title", a.title), ("url", a.url)) if v is not None}
            for a in content.actions
        ]
    if content.localized:
        data["localized"] = {
            tag: {
                k: v
                for k, v in (("title", t.title), ("subtitle", t.subtitle), ("body", t.body))
                if v is not None
            }
            for tag, t in content.localized.items()
        }
    return data


def spec_json(spec: NotificationSpec) -> dict[str, Any]:
    """The canonical stored form; `parse_notification(spec_json(s), t)` gives `s` back."""
    schedule: dict[str, Any] = {
        "send_at": spec.schedule.send_at.isoformat(),
        "quiet_hours": spec.schedule.quiet_hours.value,
    }
    if spec.schedule.local_time:
        schedule["local_time"] = spec.schedule.local_time
    if spec.schedule.throttle_per_minute:
        schedule["throttle_per_minute"] = spec.schedule.throttle_per_minute
    data: dict[str, Any] = {
        "audience": spec.audience.as_json(),
        "content": content_json(spec.content),
        "schedule": schedule,
        "ttl": spec.ttl,
        "priority": spec.priority.value,
    }
    if spec.category is not None:
        data["category"] = spec.category
    if spec.collapse_key is not None:
        data["collapse_key"] = spec.collapse_key
    data.update({name: dict(value) for name, value in spec.overrides.items()})
    return data
