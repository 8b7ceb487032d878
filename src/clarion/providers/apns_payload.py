"""The APNs request for one message: the `aps` payload and the `apns-*` headers.

Common content maps onto `aps` (alert title/subtitle/body, badge, sound,
category); an image sets `mutable-content` and travels as the custom `image`
key for the app's Notification Service Extension to download; `data` keys and
`url` sit next to `aps`. A push with nothing to show is a `background` push
(`content-available: 1`, priority 5).

The notification's `apns` override object is deep-merged into the payload
(`{"aps": {"thread-id": "t1", "interruption-level": "time-sensitive"}}`; a
`null` value deletes a key). Its `headers` member is not payload: it sets
`apns-push-type`, `apns-priority`, `apns-topic` (MDM only needs it),
`apns-expiration` or `apns-collapse-id` for this push.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clarion.model.message import Message, Priority

PAYLOAD_LIMIT = 4096
VOIP_PAYLOAD_LIMIT = 5120
MAX_COLLAPSE_ID_BYTES = 64

TOPIC_SUFFIXES: Mapping[str, str | None] = {
    "alert": "",
    "background": "",
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "liveactivity": ".push-type.liveactivity",
    "location": ".location-query",
    "pushtotalk": ".voip-ptt",
    "widgets": ".push-type.widgets",
    "mdm": None,  # the topic is the UID of the MDM certificate: give `apns-topic`
}
"""Push types and the suffix their `apns-topic` adds to the bundle id."""

TOKEN_AUTH_ONLY = frozenset({"location", "liveactivity"})
OVERRIDABLE_HEADERS = frozenset(
    {"apns-push-type", "apns-priority", "apns-topic", "apns-expiration", "apns-collapse-id"}
)
PRIORITIES = frozenset({"1", "5", "10"})


class ApnsMessageError(ValueError):
    """The message cannot become a valid APNs request (bad override, long collapse key)."""


@dataclass(frozen=True, slots=True)
class ApnsRequestParts:
    """What `render` needs besides the URL: headers in wire order and the body."""

    headers: tuple[tuple[str, str], ...]
    body: bytes
    push_type: str
    limit: int


@dataclass(frozen=True, slots=True)
class ApnsBody:
    """The device-independent part of a request: the same for every device of a push.

    Rendering it is most of the CPU of a request (building the payload dict,
    JSON encoding), so a provider may reuse it across the devices of one
    notification (see `ApnsProvider`). `leading_headers` are the first two
    headers in wire order (push type, topic).
    """

    body: bytes
    push_type: str
    leading_headers: tuple[tuple[str, str], ...]
    header_overrides: Mapping[str, str]
    limit: int


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""One encoder for every payload: `json.dumps` with options builds a new one per call."""


def render_parts(
    message: Message,
    *,
    bundle_id: str,
    token_auth: bool,
    now: datetime,
) -> ApnsRequestParts:
    """Headers and JSON body for `message`; raises `ApnsMessageError`."""
    body = render_body(message, bundle_id=bundle_id, token_auth=token_auth)
    return ApnsRequestParts(
        render_headers(message, body, now), body.body, body.push_type, body.limit
    )


def render_body(message: Message, *, bundle_id: str, token_auth: bool) -> ApnsBody:
    """The payload and what follows from it alone; raises `ApnsMessageError`.

    Reads `content`, `category` and `overrides` of the message, nothing else.
    """
    overrides = dict(message.overrides)
    header_overrides = _header_overrides(overrides.pop("headers", None))
    content = message.content
    silent = content.is_silent and content.badge is None
    push_type = header_overrides.get("apns-push-type", "background" if silent else "alert")
    if push_type not in TOPIC_SUFFIXES:
        raise ApnsMessageError(f"unknown apns-push-type {push_type!r}")
    if push_type in TOKEN_AUTH_ONLY and not token_auth:
        raise ApnsMessageError(f"push type {push_type!r} needs token auth")
    payload = deep_merge(build_payload(message, background=push_type == "background"), overrides)
    leading = (
        ("apns-push-type", push_type),
        ("apns-topic", _topic(push_type, bundle_id, header_overrides)),
    )
    limit = VOIP_PAYLOAD_LIMIT if push_type == "voip" else PAYLOAD_LIMIT
    return ApnsBody(_ENCODER.encode(payload).encode(), push_type, leading, header_overrides, limit)


def render_headers(message: Message, body: ApnsBody, now: datetime) -> tuple[tuple[str, str], ...]:
    """The `apns-*` headers of `message` in wire order; raises `ApnsMessageError`."""
    overrides = body.header_overrides
    headers = (
        *body.leading_headers,
        ("apns-priority", _priority(body.push_type, message.priority, overrides)),
        ("apns-expiration", _expiration(message, now, overrides)),
        ("apns-id", str(message.push_id)),
    )
    collapse_id = overrides.get("apns-collapse-id", message.collapse_key)
    if collapse_id:
        if len(collapse_id.encode()) > MAX_COLLAPSE_ID_BYTES:
            raise ApnsMessageError(f"collapse id is over {MAX_COLLAPSE_ID_BYTES} bytes")
        headers = (*headers, ("apns-collapse-id", collapse_id))
    return headers


def build_payload(message: Message, *, background: bool) -> dict[str, Any]:
    """The payload before overrides: custom keys at the top, `aps` last so it wins."""
    content = message.content
    alert = {
        key: value
        for key, value in (
            ("title", content.title),
            ("subtitle", content.subtitle),
            ("body", content.body),
        )
        if value is not None
    }
    aps: dict[str, Any] = {}
    if alert:
        aps["alert"] = alert
    if content.badge is not None:
        aps["badge"] = content.badge
    if content.sound is not None:
        aps["sound"] = content.sound
    if background:
        aps["content-available"] = 1
    if content.image is not None:
        aps["mutable-content"] = 1
    if message.category is not None:
        aps["category"] = message.category
    payload: dict[str, Any] = {key: value for key, value in content.data.items() if key != "aps"}
    if content.image is not None:
        payload["image"] = content.image
    if content.url is not None:
        payload["url"] = content.url
    payload["aps"] = aps
    return payload


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` laid over `base`: objects merge key by key, `None` deletes, the rest replaces."""
    merged = dict(base)
    for key, value in extra.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _header_overrides(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ApnsMessageError("apns.headers must be an object")
    headers = {str(name).lower(): str(value) for name, value in raw.items()}
    unknown = set(headers) - OVERRIDABLE_HEADERS
    if unknown:
        raise ApnsMessageError(f"apns.headers cannot set {', '.join(sorted(unknown))}")
    return headers


def _topic(push_type: str, bundle_id: str, overrides: Mapping[str, str]) -> str:
    if "apns-topic" in overrides:
        return overrides["apns-topic"]
    suffix = TOPIC_SUFFIXES[push_type]
    if suffix is None:
        raise ApnsMessageError(f"push type {push_type!r} needs apns.headers.apns-topic")
    return bundle_id + suffix


def _priority(push_type: str, priority: Priority, overrides: Mapping[str, str]) -> str:
    if push_type == "background":
        return "5"
    if push_type == "pushtotalk":
        return "10"
    chosen = overrides.get("apns-priority", "10" if priority is Priority.HIGH else "5")
    if chosen not in PRIORITIES:
        raise ApnsMessageError(f"apns-priority must be 1, 5 or 10, not {chosen!r}")
    return chosen


def _expiration(message: Message, now: datetime, overrides: Mapping[str, str]) -> str:
    if "apns-expiration" in overrides:
        if not overrides["apns-expiration"].isdigit():
            raise ApnsMessageError("apns-expiration must be UNIX seconds")
        return overrides["apns-expiration"]
    if message.expires_at is not None:
        return str(max(0, int(message.expires_at.timestamp())))
    if message.ttl:
        return str(int((now + timedelta(seconds=message.ttl)).timestamp()))
    return "0"
