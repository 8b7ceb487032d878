"""The dashboard's session: a sealed cookie, re-checked against the key store on every request.

Why a sealed cookie and no session table: the dashboard keeps nothing of its
own in the database. The cookie is AES-256-GCM under a key derived (HKDF)
from `Settings.secret_key`, so a client can neither read nor forge it. It
holds the SHA-256 of the key the person signed in with (what the key store
keeps), never the key itself, plus the CSRF token and the sign-in time. Each
request looks that hash up again, so revoking the key signs its sessions
out at once; sessions also end 12 hours after sign-in.

Before sign-in the cookie holds only a CSRF token, so the sign-in form is
protected like every other form.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE = "clarion_session"
LIFETIME = timedelta(hours=12)
_AAD = b"clarion dashboard session v1"
_NONCE = 12


@dataclass(frozen=True, slots=True)
class SessionState:
    """What the cookie carries: the CSRF token and, once signed in, the key's hash."""

    csrf: str
    key_hash: str | None = None
    signed_in_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.signed_in_at is None or now - self.signed_in_at > LIFETIME


def new_state() -> SessionState:
    """An anonymous state with a fresh CSRF token (before sign-in, and after sign-out)."""
    return SessionState(csrf=secrets.token_urlsafe(32))


def signed_in(key_hash: str, now: datetime) -> SessionState:
    """A fresh state for a new sign-in: a new CSRF token too, so none survives a sign-in."""
    return SessionState(csrf=secrets.token_urlsafe(32), key_hash=key_hash, signed_in_at=now)


class SessionSealer:
    """Seals and opens session cookies under a key derived from the secret key."""

    def __init__(self, secret_key: bytes) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"clarion dashboard session"
        ).derive(secret_key)
        self._aead = AESGCM(derived)

    def seal(self, state: SessionState) -> str:
        data = {"c": state.csrf, "k": state.key_hash}
        if state.signed_in_at is not None:
            data["t"] = state.signed_in_at.timestamp()  # type: ignore[assignment]
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, json.dumps(data).encode(), _AAD)
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, cookie: str | None) -> SessionState | None:
        """The state in `cookie`, or None when it is absent, tampered or not ours."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD)
            data = json.loads(plain)
        except (ValueError, InvalidTag, binascii.Error):
            return None
        csrf, key_hash, issued = data.get("c"), data.get("k"), data.get("t")
        if not isinstance(csrf, str) or not (key_hash is None or isinstance(key_hash, str)):
            return None
        moment = None
        if isinstance(issued, int | float):
            moment = datetime.fromtimestamp(issued, tz=UTC)
        return SessionState(csrf=csrf, key_hash=key_hash, signed_in_at=moment)


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time CSRF comparison."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
