"""Web Push (RFC 8030): encrypted pushes to browsers and UnifiedPush distributors.

The recipient's subscription endpoint *is* the request URL, whatever host it
names: Chrome's FCM, Mozilla autopush, Apple, WNS for Edge, or any UnifiedPush
distributor's https URL. Nothing here depends on a vendor host. The body is the
JSON a service worker reads, encrypted to the subscription (`webpush_crypto`),
and the request carries a VAPID JWT for the endpoint's origin (`vapid`).

The payload a service worker receives (the Clarion SDK's worker reads it):

    {"push_id": "<uuid>", "title": str, "body": str, "subtitle": str,
     "image": url, "url": url to open on click, "app_badge": int,
     "tag": collapse key, "data": {...},
     "actions": [{"action": id, "title": str, "url": url?}],
     "notification_id": str, "device_id": str}

`notification_id` and `device_id` name the delivery, so the worker can
report `received` and `opened` to `POST /v1/apps/{app}/events`.

Absent values are left out; a push without a title or a body is refused
(`NotUserVisible`), because browsers require every push to show a
notification. The notification's `webpush` object is merged in
on top: its keys `ttl`, `urgency` (`very-low|low|normal|high`) and `topic` set
the RFC 8030 headers; every other key is copied into the payload (so `icon`,
`badge` (an image URL on the web), `requireInteraction`, `renotify`, `silent`,
`lang`, `dir`, `vibrate`, `timestamp`... reach `showNotification`), `data` is
merged key by key, and a `null` value removes a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from clarion.clock import Clock, SystemClock
from clarion.model.message import Message, Priority, Recipient, WebPushSubscription
from clarion.model.outcome import AuthFailed, InvalidToken, Outcome, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import (
    HttpRequest,
    HttpResponse,
    PayloadTooLarge,
    Provider,
    ProviderError,
    Transport,
)
from clarion.providers.oauth import parse_retry_after
from clarion.providers.vapid import (
    VapidKeyPair,
    VapidSigner,
    check_subject,
    generate_vapid_keys,
    load_private_key,
)
from clarion.providers.webpush_crypto import MAX_PLAINTEXT, b64url_decode, encrypt

__all__ = [
    "DEFAULT_TTL",
    "MAX_TTL",
    "InvalidOverride",
    "InvalidSubscription",
    "NotUserVisible",
    "VapidKeyPair",
    "WebPushCredentials",
    "WebPushProvider",
    "generate_vapid_keys",
    "render_payload",
    "topic_for",
]

DEFAULT_TTL = 28 * 24 * 3600
"""Four weeks: how long a push service keeps a push for an offline browser by default."""

MAX_TTL = 30 * 24 * 3600
"""Mozilla autopush's ceiling; services lower larger values anyway."""

URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_HEADER_KEYS = frozenset({"ttl", "urgency", "topic"})


class InvalidSubscription(ProviderError):
    """The stored subscription cannot be pushed to (bad endpoint or keys): a dead token."""


class InvalidOverride(ProviderError):
    """The notification's `webpush` object holds a value no push service accepts."""


class NotUserVisible(ProviderError):
    """The push has nothing to show, and browsers only allow pushes that show a notification.

    Subscriptions are made with `userVisibleOnly: true`; a worker that shows
    nothing gets a generic notification, throttling, or its subscription revoked.
    """


@dataclass(frozen=True, slots=True)
class WebPushCredentials:
    """An app's VAPID identity.

    `vapid_private_key` is a P-256 private key in PEM (make one with
    `generate_vapid_keys`); `subject` is the contact URI push services may
    use to reach the sender (`mailto:ops@example.com` or `https://...`).
    """

    vapid_private_key: str
    subject: str


def topic_for(key: str) -> str:
    """An RFC 8030 Topic for a collapse key: itself when valid, else a stable digest.

    A Topic is at most 32 characters of the base64url alphabet; other keys map
    to the first 24 bytes of their SHA-256 in base64url (exactly 32 characters).
    """
    if _TOPIC.match(key):
        return key
    digest = hashlib.sha256(key.encode("utf-8")).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def render_payload(message: Message) -> dict[str, Any]:
    """The service worker's JSON (see the module docstring), overrides merged in."""
    content = message.content
    payload: dict[str, Any] = {
        "push_id": str(message.push_id),
        "title": content.title,
        "subtitle": content.subtitle,
        "body": content.body,
        "image": content.image,
        "url": content.url,
        "app_badge": content.badge,
        "tag": message.collapse_key,
        "data": dict(content.data) or None,
        "actions": [
            {k: v for k, v in (("action", a.id), ("title", a.title), ("url", a.url)) if v}
            for a in content.actions
        ]
        or None,
        "notification_id": message.notification_id,
        "device_id": message.device_id,
    }
    for key, value in message.overrides.items():
        if key in _HEADER_KEYS:
            continue
        if key == "data" and isinstance(value, Mapping):
            payload["data"] = {**(payload["data"] or {}), **value}
        else:
            payload[key] = value
    return {key: value for key, value in payload.items() if value is not None}


def _subscription(recipient: Recipient) -> tuple[WebPushSubscription, bytes, bytes]:
    subscription = recipient.subscription
    if subscription is None:
        raise InvalidSubscription("recipient has no Web Push subscription")
    parts = urlsplit(subscription.endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidSubscription(f"endpoint is not an http(s) URL: {subscription.endpoint!r}")
    try:
        ua_public, auth = b64url_decode(subscription.p256dh), b64url_decode(subscription.auth)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSubscription(f"subscription keys are not base64url: {exc}") from exc
    if len(ua_public) != 65 or ua_public[0] != 0x04 or len(auth) != 16:
        raise InvalidSubscription("p256dh must be a 65-byte point and auth 16 bytes")
    return subscription, ua_public, auth


def _detail(response: HttpResponse) -> str:
    """The reason a push service gave: Apple's `reason`, Mozilla's `message`, or the text."""
    try:
        body = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        return response.body[:200].decode("utf-8", "replace").strip()
    if isinstance(body, dict):
        for key in ("reason", "message", "error"):
            if body.get(key):
                return str(body[key])
    return ""


def _with(prefix: str, response: HttpResponse) -> str:
    detail = _detail(response)
    return f"{prefix}: {detail}" if detail else prefix


_Classifier = Callable[[HttpResponse, float | None], Outcome]

STATUS_OUTCOMES: dict[int, _Classifier] = {
    200: lambda r, _: Sent(r.headers.get("location")),
    201: lambda r, _: Sent(r.headers.get("location")),
    202: lambda r, _: Sent(r.headers.get("location")),
    400: lambda r, _: Rejected(_with("bad_request", r)),
    401: lambda r, _: AuthFailed(_with("vapid_rejected", r)),
    403: lambda r, _: AuthFailed(_with("vapid_rejected", r)),
    404: lambda r, _: InvalidToken(_with("subscription_expired", r)),
    410: lambda r, _: InvalidToken(_with("unsubscribed", r)),
    413: lambda r, _: Rejected(_with("payload_too_large", r)),
    429: lambda r, after: Retry(_with("throttled", r), after),
    500: lambda r, after: Retry(f"push_service_error {r.status}", after),
}
"""RFC 8030 answers; `500` stands for every 5xx. Unlisted statuses are rejected."""


class WebPushProvider(Provider):
    """Pushes to Web Push subscriptions with one app's VAPID key."""

    platform: ClassVar[Platform] = Platform.WEBPUSH

    def __init__(
        self,
        credentials: WebPushCredentials,
        transport: Transport,
        *,
        clock: Clock | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(transport)
        check_subject(credentials.subject)
        self.credentials = credentials
        self._clock = clock or SystemClock()
        self._signer = VapidSigner(
            load_private_key(credentials.vapid_private_key), credentials.subject, clock=self._clock
        )
        self._timeout = timeout

    @property
    def public_key(self) -> str:
        """The VAPID public key browsers must subscribe with (base64url point)."""
        return self._signer.public_key

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        subscription, ua_public, auth = _subscription(recipient)
        payload = render_payload(message)
        if not (payload.get("title") or payload.get("body")):
            raise NotUserVisible("a Web Push needs a title or a body to show")
        plaintext = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(plaintext) > MAX_PLAINTEXT:
            raise PayloadTooLarge(len(plaintext), MAX_PLAINTEXT)
        headers = [
            ("TTL", str(self._ttl(message))),
            ("Urgency", self._urgency(message)),
            ("Content-Encoding", "aes128gcm"),
            ("Content-Type", "application/octet-stream"),
        ]
        topic = self._topic(message)
        if topic is not None:
            headers.append(("Topic", topic))
        try:
            body = encrypt(plaintext, ua_public, auth)
        except ValueError as exc:
            raise InvalidSubscription(f"p256dh is not a P-256 public key: {exc}") from exc
        return HttpRequest("POST", subscription.endpoint, tuple(headers), body, self._timeout)

    async def authorize(self, request: HttpRequest) -> HttpRequest:
        return request.with_header("Authorization", self._signer.authorization(request.url))

    def classify(self, response: HttpResponse) -> Outcome:
        status = response.status
        key = 500 if 500 <= status < 600 else status
        entry = STATUS_OUTCOMES.get(key)
        if entry is None:
            return Rejected(_with(f"unexpected_status {status}", response))
        return entry(
            response, parse_retry_after(response.headers.get("retry-after"), self._clock.now())
        )

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        """As `Provider.send`, and more outcomes decided before any request.

        A broken subscription is an `InvalidToken`; a bad override or a push
        with nothing to show is `Rejected`.
        """
        try:
            return await super().send(message, recipient)
        except InvalidSubscription as exc:
            return InvalidToken(f"invalid_subscription: {exc}")
        except InvalidOverride as exc:
            return Rejected(f"invalid_override: {exc}")
        except NotUserVisible as exc:
            return Rejected(f"not_user_visible: {exc}")

    def _ttl(self, message: Message) -> int:
        override = message.overrides.get("ttl")
        if override is not None:
            if isinstance(override, bool) or not isinstance(override, int) or override < 0:
                raise InvalidOverride(f"ttl must be a non-negative integer, not {override!r}")
            return min(override, MAX_TTL)
        ttl = message.ttl if message.ttl is not None else DEFAULT_TTL
        if message.expires_at is not None:
            remaining = (message.expires_at - self._clock.now()).total_seconds()
            ttl = min(ttl, int(remaining))
        return max(0, min(ttl, MAX_TTL))

    @staticmethod
    def _urgency(message: Message) -> str:
        override = message.overrides.get("urgency")
        if override is None:
            return "high" if message.priority is Priority.HIGH else "normal"
        if override not in URGENCIES:
            raise InvalidOverride(f"urgency must be one of {sorted(URGENCIES)}, not {override!r}")
        return str(override)

    @staticmethod
    def _topic(message: Message) -> str | None:
        override = message.overrides.get("topic")
        if override is not None and not isinstance(override, str):
            raise InvalidOverride(f"topic must be a string, not {override!r}")
        key = override or message.collapse_key
        return topic_for(key) if key else None
