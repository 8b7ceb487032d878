"""Devices: what a registration must contain, per platform.

A token that cannot work is refused at registration with the field named, so
a bad value never reaches a push service.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from clarion.model.errors import FieldError
from clarion.model.message import WebPushSubscription
from clarion.model.platform import Platform

MAX_TOKEN_LENGTH = 4096
MAX_APNS_TOKEN_LENGTH = 400
MAX_TAGS = 64
MAX_TAG_VALUE = 256
MAX_USER_ID = 256
MAX_APP_VERSION = 64
_TAG_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_.~:-]{1,128}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_BLACKBERRY_PIN = re.compile(r"^[0-9a-fA-F]{8}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """Deployment choices that change what a token may be."""

    allow_private_endpoints: bool = False
    """Lets WNS channels live outside `notify.windows.com` (emulators)."""


def normalize_token(
    platform: Platform, token: Any, policy: TokenPolicy = TokenPolicy()
) -> tuple[str, WebPushSubscription | None]:
    """The stored form of a token, or a `FieldError` naming what is wrong.

    For Web Push the token is the subscription object; the stored token is
    its endpoint and the subscription is returned alongside.
    """
    if platform is Platform.WEBPUSH:
        subscription = check_subscription(token)
        return subscription.endpoint, subscription
    if not isinstance(token, str):
        raise FieldError("token", "must be a string")
    checker = _TOKEN_CHECKS[platform]
    return checker(token.strip(), policy), None


def _apns(token: str, policy: TokenPolicy) -> str:
    if not token or len(token) % 2 or not _HEX.match(token):
        raise FieldError("token", "an APNs device token is hex digits of even length")
    if len(token) > MAX_APNS_TOKEN_LENGTH:
        raise FieldError(
            "token", f"an APNs device token has at most {MAX_APNS_TOKEN_LENGTH} hex digits"
        )
    return token.lower()


def _opaque(token: str, policy: TokenPolicy) -> str:
    if not token:
        raise FieldError("token", "must not be empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise FieldError("token", f"must be at most {MAX_TOKEN_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise FieldError("token", "must not contain spaces or control characters")
    return token


def _wns(token: str, policy: TokenPolicy) -> str:
    _opaque(token, policy)
    parts = _https_url(token, "token")
    host = (parts.hostname or "").lower()
    if not policy.allow_private_endpoints and not host.endswith(".notify.windows.com"):
        raise FieldError("token", "a WNS channel URI must be on a notify.windows.com host")
    return token


def _blackberry(token: str, policy: TokenPolicy) -> str:
    if _BLACKBERRY_PIN.match(token):
        return token.lower()
    if len(token) <= 254 and _EMAIL.match(token):
        return token
    raise FieldError("token", "a BlackBerry address is a PIN (8 hex digits) or an email address")


_TOKEN_CHECKS = {
    Platform.APNS: _apns,
    Platform.FCM: _opaque,
    Platform.HMS: _opaque,
    Platform.ADM: _opaque,
    Platform.WNS: _wns,
    Platform.BLACKBERRY: _blackberry,
}


def _https_url(value: str, field: str) -> Any:
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise FieldError(field, "is not a valid URL") from exc
    if parts.scheme != "https" or not parts.hostname:
        raise FieldError(field, "must be an https:// URL")
    return parts


def _b64url(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise FieldError(field, "must be a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise FieldError(field, "is not valid base64url") from exc


def check_subscription(token: Any) -> WebPushSubscription:
    """A browser's PushSubscription JSON: https endpoint, P-256 `p256dh`, 16-byte `auth`."""
    if not isinstance(token, Mapping):
        raise FieldError("token", "a Web Push token is the subscription object {endpoint, keys}")
    endpoint = token.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > MAX_TOKEN_LENGTH:
        raise FieldError("token.endpoint", "must be an https:// URL")
    _https_url(endpoint, "token.endpoint")
    keys = token.get("keys")
    if not isinstance(keys, Mapping):
        raise FieldError("token.keys", "must hold p256dh and auth")
    p256dh = _b64url(keys.get("p256dh"), "token.keys.p256dh")
    if len(p256dh) != 65 or p256dh[0] != 4 or not _on_p256(p256dh):
        raise FieldError("token.keys.p256dh", "must be a 65-byte uncompressed P-256 point")
    auth = _b64url(keys.get("auth"), "token.keys.auth")
    if len(auth) != 16:
        raise FieldError("token.keys.auth", "must decode to 16 bytes")
    return WebPushSubscription(endpoint=endpoint, p256dh=keys["p256dh"], auth=keys["auth"])


def _on_p256(point: bytes) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    return True


def check_tags(tags: Any, field: str = "tags") -> dict[str, str]:
    """A bounded map of short names to short strings."""
    if not isinstance(tags, Mapping):
        raise FieldError(field, "must be an object of strings")
    if len(tags) > MAX_TAGS:
        raise FieldError(field, f"at most {MAX_TAGS} tags")
    for name, value in tags.items():
        if not isinstance(name, str) or not _TAG_NAME.match(name):
            raise FieldError(f"{field}.{name}", "tag names are 1-64 of A-Z a-z 0-9 _ . : -")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise FieldError(f"{field}.{name}", f"must be a string of at most {MAX_TAG_VALUE}")
    return dict(tags)


def check_topic(name: str, field: str = "topic") -> str:
    if not _TOPIC_NAME.match(name):
        raise FieldError(field, "topic names are 1-128 of A-Z a-z 0-9 _ . ~ : -")
    return name


def check_user_id(value: str, field: str = "user_id") -> str:
    if not value or len(value) > MAX_USER_ID or not value.isprintable():
        raise FieldError(field, f"must be 1-{MAX_USER_ID} printable characters")
    return value


def check_app_version(value: str, field: str = "app_version") -> str:
    if not value or len(value) > MAX_APP_VERSION or not value.isprintable():
        raise FieldError(field, f"must be 1-{MAX_APP_VERSION} printable characters")
    return value


@dataclass(frozen=True, slots=True)
class Device:
    """One installation of the app on one phone or browser."""

    id: str
    app_id: str
    platform: Platform
    token: str
    subscription: WebPushSubscription | None
    user_id: str | None
    locale: str | None
    timezone: str | None
    app_version: str | None
    tags: Mapping[str, str]
    consent: str
    active: bool
    deactivated_reason: str | None
    created_at: datetime
    updated_at: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class Registration:
    """A validated device registration (upserted on app, platform and token).

    Fields left None keep the stored value on re-registration; `tags` given
    replace the stored tags.
    """

    platform: Platform
    token: str
    subscription: WebPushSubscription | None = None
    user_id: str | None = None
    locale: str | None = None
    timezone: str | None = None
    app_version: str | None = None
    tags: Mapping[str, str] | None = None
