"""APNs credentials and the two ways of proving who we are to Apple.

Token auth signs a short ES256 JWT with the team's `.p8` key. Apple refuses a
token older than an hour and punishes a new one more often than every twenty
minutes (`TooManyProviderTokenUpdates`), so `ApnsJwtSigner` signs once, keeps
the rendered `authorization` header and reuses it for `TOKEN_LIFETIME`
(50 minutes) on every request: the hot path is a clock reading, never a
signature.

Certificate auth happens in the TLS handshake, which the provider does not own:
the transport does. `write_client_certificate` puts the PEMs in files a
transport can load (`HttpxTransport(client_cert=...)`, `CurlTransport(
client_cert=...)`), readable by this user only.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from clarion.clock import Clock
from clarion.providers.base import InvalidCredentials

TOKEN_LIFETIME = 50 * 60.0
"""Seconds a JWT is reused: Apple wants a new one every 20 to 60 minutes."""

MIN_REFRESH_INTERVAL = 20 * 60.0
"""A JWT younger than this is never replaced, even when APNs calls it expired."""


class ApnsEnvironment(StrEnum):
    """Which APNs service the tokens were issued for."""

    PRODUCTION = "production"
    SANDBOX = "sandbox"


HOSTS = {
    ApnsEnvironment.PRODUCTION: "https://api.push.apple.com",
    ApnsEnvironment.SANDBOX: "https://api.sandbox.push.apple.com",
}


@dataclass(frozen=True, slots=True)
class ApnsTokenCredentials:
    """Token-based auth: a `.p8` signing key of the developer team.

    `private_key` is the PEM text of the `.p8` file; `key_id` its 10-character
    Key ID; `team_id` the 10-character Team ID; `bundle_id` the app's topic.
    """

    key_id: str
    team_id: str
    private_key: str
    bundle_id: str
    environment: ApnsEnvironment = ApnsEnvironment.PRODUCTION

    def __repr__(self) -> str:
        return (
            f"ApnsTokenCredentials(key_id={self.key_id!r}, team_id={self.team_id!r}, "
            f"bundle_id={self.bundle_id!r}, environment={self.environment.value!r})"
        )


@dataclass(frozen=True, slots=True)
class ApnsCertificateCredentials:
    """Certificate-based auth: the app's push TLS certificate and its key, both PEM."""

    certificate: str
    private_key: str
    bundle_id: str
    environment: ApnsEnvironment = ApnsEnvironment.PRODUCTION

    def __repr__(self) -> str:
        return (
            f"ApnsCertificateCredentials(bundle_id={self.bundle_id!r}, "
            f"environment={self.environment.value!r})"
        )


ApnsCredentials = ApnsTokenCredentials | ApnsCertificateCredentials


def load_signing_key(pem: str) -> ec.EllipticCurvePrivateKey:
    """The P-256 key of a `.p8` file; `InvalidCredentials` for anything else."""
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidCredentials(f"APNs private key is not a readable PEM key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InvalidCredentials("APNs private key must be an EC P-256 (.p8) key")
    return key


class ApnsJwtSigner:
    """Signs the provider JWT and hands out the cached `authorization` header.

    The header is renewed when it is `TOKEN_LIFETIME` old. `invalidate` (after
    APNs answered `ExpiredProviderToken`) drops it only when it is at least
    `MIN_REFRESH_INTERVAL` old: many requests in flight share one token and all
    report the same expiry, and replacing a fresh token would earn
    `TooManyProviderTokenUpdates`.
    """

    def __init__(
        self,
        credentials: ApnsTokenCredentials,
        clock: Clock,
        *,
        lifetime: float = TOKEN_LIFETIME,
    ) -> None:
        if not MIN_REFRESH_INTERVAL <= lifetime < 3600:
            raise ValueError("an APNs token must live between 20 and 60 minutes")
        self._key = load_signing_key(credentials.private_key)
        self._key_id = credentials.key_id
        self._team_id = credentials.team_id
        self._clock = clock
        self._lifetime = lifetime
        self._header: str | None = None
        self._signed_at = 0.0
        self.signed_count = 0
        """How many JWTs this signer made (for tests and metrics)."""

    def header(self) -> str:
        """`bearer <JWT>`, signed at most once per `lifetime`."""
        if self._header is None or self._clock.monotonic() - self._signed_at >= self._lifetime:
            self._header = "bearer " + self._sign()
        return self._header

    def invalidate(self) -> bool:
        """Forget the token unless it is too young to replace; True when forgotten."""
        if self._header is None:
            return True
        if self._clock.monotonic() - self._signed_at < MIN_REFRESH_INTERVAL:
            return False
        self._header = None
        return True

    def _sign(self) -> str:
        self._signed_at = self._clock.monotonic()
        self.signed_count += 1
        return jwt.encode(
            {"iss": self._team_id, "iat": int(self._clock.now().timestamp())},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )


def write_client_certificate(
    credentials: ApnsCertificateCredentials, directory: Path | None = None
) -> tuple[Path, Path]:
    """Write the certificate and key PEMs for a transport; returns `(cert_path, key_path)`.

    The files go to a fresh private directory (mode 0700, files 0600) unless
    `directory` is given. Build the transport with `client_cert=` this pair and
    give it to the `ApnsProvider` holding the same credentials; delete the
    directory when the transport is closed.
    """
    target = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="clarion-apns-"))
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = (target / "apns-cert.pem", target / "apns-key.pem")
    for path, text in zip(paths, (credentials.certificate, credentials.private_key), strict=True):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        path.chmod(0o600)
    return paths
