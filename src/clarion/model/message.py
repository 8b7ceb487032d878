"""One push as a provider sees it: the content for one device plus delivery options."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from clarion.model.content import Content
from clarion.model.platform import Platform


class Priority(StrEnum):
    """`high` wakes the device now; `normal` lets the service save battery."""

    HIGH = "high"
    NORMAL = "normal"


@dataclass(frozen=True, slots=True)
class WebPushSubscription:
    """A browser's `PushSubscription.toJSON()`: where to POST and the keys to encrypt to.

    `p256dh` (65-byte uncompressed P-256 point) and `auth` (16 bytes) are base64url.
    """

    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """The device a push goes to, as much of it as a provider needs.

    `token` is the platform token (APNs hex token, FCM registration token, WNS
    channel URI, BlackBerry PIN...). For Web Push, `subscription` is set and
    `token` is the subscription's endpoint.
    """

    device_id: str
    platform: Platform
    token: str
    locale: str | None = None
    subscription: WebPushSubscription | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """What to deliver to one recipient.

    `content` is already localized and personalized for the recipient.
    `push_id` is stable for one delivery across retries, so providers use it as
    the idempotency / collapse identity (`apns-id`, BlackBerry `push-id`).
    `expires_at` is when the push stops being worth delivering (send_at + ttl).
    `overrides` is the notification's per-platform object, merged into the
    native payload for what the common content cannot say.
    `notification_id` and `device_id` name the delivery, for clients that
    report `received`/`opened` themselves (the Web Push SDK's service worker
    reads them from the payload).
    """

    content: Content
    push_id: uuid.UUID
    expires_at: datetime | None = None
    ttl: int | None = None
    priority: Priority = Priority.HIGH
    collapse_key: str | None = None
    category: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    notification_id: str | None = None
    device_id: str | None = None

    def seconds_left(self, now: datetime) -> int | None:
        """How long the push is still worth delivering: to `expires_at` when set,
        else `ttl`; None when neither says (the service's default applies)."""
        if self.expires_at is not None:
            return int((self.expires_at - now).total_seconds())
        return self.ttl
