"""VAPID (RFC 8292): how an app server proves to a push service who is sending.

The app's P-256 key pair is its identity: browsers subscribe with the public
key (`applicationServerKey`), and every push carries an ES256 JWT signed with
the private key, addressed (`aud`) to the push service's origin. Signing costs
far more than the rest of a push, so one JWT per origin is reused until a
margin before it expires; the clock is injected so tests move time instead of
waiting. The verifying half (`parse_authorization`, `verify`) is what a push
service does, and serves the emulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.clock import Clock, SystemClock
from clarion.providers.base import InvalidCredentials
from clarion.providers.webpush_crypto import (
    b64url_decode,
    b64url_encode,
    load_public_point,
    public_point,
)

JWT_LIFETIME = timedelta(hours=12)
"""How long a signed JWT is valid; RFC 8292 allows at most 24 hours."""

REFRESH_MARGIN = timedelta(hours=1)
"""A cached JWT is replaced this long before it expires, so clock skew never rejects it."""

MAX_LIFETIME = timedelta(hours=24)

_SUBJECT = re.compile(r"^(mailto:\S+@\S+|https://\S+)$")
_AUTH_PARAM = re.compile(r"\s*([tk])\s*=\s*([A-Za-z0-9_\-.=]+)\s*")


class VapidError(ValueError):
    """An Authorization header a push service must refuse; `status` is 401 or 403."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class VapidKeyPair:
    """An app's VAPID identity: the private key as PEM, the public key as browsers want it.

    `public_key` is the base64url (unpadded) 65-byte uncompressed point, the
    value of `pushManager.subscribe({applicationServerKey})`.
    """

    private_pem: str
    public_key: str


def generate_vapid_keys() -> VapidKeyPair:
    """A fresh P-256 key pair for an app that has none yet."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return VapidKeyPair(private_pem=pem, public_key=b64url_encode(public_point(key.public_key())))


def vapid_public_key(private_pem: str) -> str:
    """The base64url public key browsers subscribe with, for a stored private key."""
    return b64url_encode(public_point(load_private_key(private_pem).public_key()))


def load_private_key(pem: str) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key in `pem` (PKCS#8 or SEC1); `InvalidCredentials` otherwise."""
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise InvalidCredentials(f"VAPID private key is not a PEM key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InvalidCredentials("VAPID private key must be an EC P-256 key")
    return key


def check_subject(subject: str) -> None:
    """RFC 8292 §2.1: a contact URI, `mailto:` or `https:`."""
    if not _SUBJECT.match(subject):
        raise InvalidCredentials(f"VAPID subject must be a mailto: or https: URI, not {subject!r}")


def origin_of(url: str) -> str:
    """The Web origin of a push endpoint (`scheme://host[:port]`), the JWT audience."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"https": 443, "http": 80}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


class VapidSigner:
    """Signs and caches one JWT per push-service origin for one app's key."""

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        subject: str,
        *,
        clock: Clock | None = None,
        lifetime: timedelta = JWT_LIFETIME,
        refresh_margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        if not timedelta(0) < lifetime <= MAX_LIFETIME or refresh_margin >= lifetime:
            raise ValueError("lifetime must be within 24 h and longer than the margin")
        check_subject(subject)
        self._key = private_key
        self.subject = subject
        self.public_key = b64url_encode(public_point(private_key.public_key()))
        self._clock = clock or SystemClock()
        self._lifetime = lifetime
        self._margin = refresh_margin
        self._cache: dict[str, tuple[str, datetime]] = {}

    def token_for(self, endpoint: str) -> str:
        """The JWT for the endpoint's origin; signed anew only when the cached one nears expiry."""
        audience = origin_of(endpoint)
        now = self._clock.now()
        cached = self._cache.get(audience)
        if cached is not None and now < cached[1] - self._margin:
            return cached[0]
        expires = now + self._lifetime
        claims = {"aud": audience, "exp": int(expires.timestamp()), "sub": self.subject}
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"typ": "JWT"})
        self._cache[audience] = (token, expires)
        return token

    def authorization(self, endpoint: str) -> str:
        """The `Authorization` header value: `vapid t=<jwt>, k=<public key>`."""
        return f"vapid t={self.token_for(endpoint)}, k={self.public_key}"


def parse_authorization(value: str | None) -> tuple[str, str]:
    """The (JWT, public key) of a `vapid t=..., k=...` header, spaces optional.

    Raises `VapidError` (401) when the header is missing or not in that form.
    """
    scheme, _, params = (value or "").strip().partition(" ")
    if scheme.lower() != "vapid":
        raise VapidError("Authorization must use the vapid scheme", status=401)
    found: dict[str, str] = {}
    for param in params.split(","):
        match = _AUTH_PARAM.fullmatch(param)
        if match is None:
            raise VapidError(f"malformed vapid parameter {param.strip()!r}", status=401)
        found[match.group(1)] = match.group(2)
    if set(found) != {"t", "k"}:
        raise VapidError("vapid needs both t= and k=", status=401)
    return found["t"], found["k"]


def verify(token: str, public_key: str, *, audience: str, now: datetime) -> dict[str, Any]:
    """Check a VAPID JWT the way a push service must; the claims, or `VapidError` (403).

    ES256 signature by `public_key`, `aud` equal to the service's origin, `exp`
    in the future and at most 24 hours ahead, `sub` present.
    """
    try:
        key = load_public_point(b64url_decode(public_key))
    except ValueError as exc:
        raise VapidError(f"k is not a P-256 public key: {exc}") from exc
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience=audience,
            options={"verify_exp": False, "require": ["aud", "exp", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise VapidError(f"JWT rejected: {exc}") from exc
    expires = claims["exp"]
    if not isinstance(expires, int | float):
        raise VapidError("exp is not a number")
    if expires <= now.timestamp():
        raise VapidError("JWT expired")
    if expires > (now + MAX_LIFETIME).timestamp():
        raise VapidError("exp is more than 24 hours ahead")
    if not str(claims["sub"]).strip():
        raise VapidError("sub is empty")
    return claims
