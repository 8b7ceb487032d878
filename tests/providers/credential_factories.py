"""Valid credential bodies for each provider, and the secrets in them, for tests to vary."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
PROVIDERS = ("apns", "fcm", "webpush", "wns", "adm", "hms")


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def p256_pem() -> str:
    return pem(ec.generate_private_key(ec.SECP256R1()))


@cache
def rsa_pem() -> str:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def certificate(
    now: datetime, *, days: float = 365, bundle_id: str = "com.example.app"
) -> tuple[str, str]:
    """A self-signed push certificate that expires `days` after `now` (negative: expired)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, bundle_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {bundle_id}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, now + timedelta(days=days)) - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem(key)


def service_account(token_uri: str = GOOGLE_TOKEN_URI) -> dict[str, Any]:
    return {
        "type": "service_account",
        "project_id": "shop-12345",
        "private_key_id": secrets.token_hex(20),
        "private_key": rsa_pem(),
        "client_email": "firebase-adminsdk@shop-12345.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }


def body(provider: str, now: datetime | None = None) -> dict[str, Any]:
    """A valid `PUT .../providers/{provider}` body with fresh secrets."""
    secret = "secret-" + secrets.token_urlsafe(24)
    bodies: dict[str, Any] = {
        "apns": lambda: {
            "auth": "token",
            "key_id": "ABC123DEFG",
            "team_id": "TEAM123456",
            "private_key": p256_pem(),
            "bundle_id": "com.example.app",
            "environment": "sandbox",
        },
        "fcm": lambda: {"service_account": service_account()},
        "webpush": lambda: {"subject": "mailto:ops@example.com"},
        "wns": lambda: {"client_id": "ms-app://s-1-15-2-1234", "client_secret": secret},
        "adm": lambda: {"client_id": "amzn1.application-oa2-client.abc", "client_secret": secret},
        "hms": lambda: {"app_id": "103456789", "client_secret": secret},
    }
    return dict(bodies[provider]())


def secrets_of(provider: str, credentials: dict[str, Any]) -> list[str]:
    """The secret values in a body: none of them may ever be shown or logged."""
    found: list[str] = []
    for name in ("private_key", "client_secret", "vapid_private_key", "password"):
        if name in credentials:
            found.append(credentials[name])
    account = credentials.get("service_account")
    if isinstance(account, dict):
        found.append(account["private_key"])
    return found


def key_material(secret: str) -> list[str]:
    """Distinctive pieces of a secret to grep for (the base64 lines of a PEM, or the value)."""
    lines = [line for line in secret.splitlines() if line and not line.startswith("-----")]
    return [line for line in lines if len(line) >= 40] or [secret]
