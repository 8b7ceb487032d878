"""Signed, expiring links to a recipient's preference center.

Why signed and not stored: an app server asks for a link and mails or shows
it; Clarion keeps nothing per link. A token is

    base64url(payload) "." base64url(HMAC-SHA256(key, payload))

where the payload is compact JSON `{"v":1,"a":app id,"u":user id,"e":expiry}`
(expiry in Unix seconds) and the key is derived from `Settings.secret_key`
with HKDF (its own `info`, so it opens nothing else). Verification compares
MACs in constant time before reading the payload, so a tampered token is
refused without parsing attacker-chosen JSON further than needed; the app and
the user come *only* from the verified payload, so a link for user A can
never change user B. Rotating the secret key (`clarion rotate-secret`)
invalidates every outstanding link.

Exceptions: `LinkError` (a `ValueError`) with `reason` either `invalid`
(malformed, tampered, signed with another key) or `expired`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DEFAULT_TTL = 7 * 24 * 3600
"""A week: long enough for a link in an e-mail, short enough to go stale."""
MIN_TTL = 60
MAX_TTL = 90 * 24 * 3600
_VERSION = 1
_MAX_TOKEN = 2048

Reason = Literal["invalid", "expired"]


class LinkError(ValueError):
    """A token that must not open the preference center."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"preference link is {reason}")
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class PreferenceLink:
    """What a verified token grants: this user's preferences in this app, until then."""

    app_id: str
    user_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Makes and checks preference-link tokens under one secret key."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"clarion preference-link v1"
        ).derive(secret_key)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def sign(self, app_id: str, user_id: str, now: datetime, ttl: int = DEFAULT_TTL) -> str:
        """A token for `user_id` of `app_id`, valid `ttl` seconds from `now`."""
        expires = int((now + timedelta(seconds=ttl)).timestamp())
        payload = json.dumps(
            {"v": _VERSION, "a": app_id, "u": user_id, "e": expires},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, now: datetime) -> PreferenceLink:
        """The link's grant, or `LinkError` (tampered, foreign, malformed, expired)."""
        if len(token) > _MAX_TOKEN or token.count(".") != 1:
            raise LinkError("invalid")
        body, _, signature = token.partition(".")
        try:
            payload, mac = _unb64(body), _unb64(signature)
        except (binascii.Error, ValueError) as exc:
            raise LinkError("invalid") from exc
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise LinkError("invalid")
        try:
            data = json.loads(payload)
            app_id, user_id, expires = data["a"], data["u"], data["e"]
        except (ValueError, KeyError, TypeError) as exc:
            raise LinkError("invalid") from exc
        valid = data.get("v") == _VERSION and isinstance(expires, int)
        if not (valid and isinstance(app_id, str) and isinstance(user_id, str)):
            raise LinkError("invalid")
        expires_at = datetime.fromtimestamp(expires, UTC)
        if expires_at <= now:
            raise LinkError("expired")
        return PreferenceLink(app_id, user_id, expires_at)

    def form_nonce(self, token: str) -> str:
        """The CSRF value the page's form must echo: bound to this very token."""
        return _b64(self._mac(b"form\x00" + token.encode("utf-8"))[:18])

    def check_form_nonce(self, token: str, nonce: str) -> bool:
        return hmac.compare_digest(nonce.encode("utf-8"), self.form_nonce(token).encode("ascii"))
