"""Valid registration bodies for each platform, for tests to vary."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def webpush_subscription(endpoint: str = "https://push.example.net/send/abc") -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {"endpoint": endpoint, "keys": {"p256dh": b64url(point), "auth": b64url(b"a" * 16)}}


def apns_token() -> str:
    return secrets.token_hex(32)


def registration(platform: str = "apns", **fields: Any) -> dict[str, Any]:
    tokens: dict[str, Any] = {
        "apns": apns_token,
        "fcm": lambda: "fcm:" + secrets.token_urlsafe(100),
        "hms": lambda: "hms" + secrets.token_hex(30),
        "adm": lambda: "amzn1.adm-registration.v3." + secrets.token_urlsafe(60),
        "wns": lambda: f"https://db5p.notify.windows.com/w/?token={secrets.token_urlsafe(40)}",
        "webpush": webpush_subscription,
        "blackberry": lambda: secrets.token_hex(4),
    }
    body: dict[str, Any] = {"platform": platform, "token": tokens[platform]()}
    body.update(fields)
    return body
