"""Field-level checks shared by the per-provider credential validators.

Each check raises `FieldError` naming the field; `FieldCollector` gathers
them so one answer lists every bad field. Messages describe the rule and
never repeat the value (which may be a secret).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from clarion.model.errors import FieldError
from clarion.providers.outbound import OutboundPolicy, check_endpoint_url, check_host_pattern

T = TypeVar("T")
REDACTED = "[redacted]"
MAX_FIELD = 16 * 1024
MAX_ALLOWED_HOSTS = 50


class InvalidCredentialBody(ValueError):
    """The credentials body has bad fields; `errors` names each one."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))


class FieldCollector:
    """Runs checks, keeping every `FieldError`; `done()` raises them together."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def run(self, check: Callable[[], T]) -> T | None:
        try:
            return check()
        except FieldError as error:
            self.errors.append(error)
            return None

    def done(self) -> None:
        if self.errors:
            raise InvalidCredentialBody(self.errors)


def only_fields(body: Mapping[str, Any], allowed: Iterable[str], provider: str) -> None:
    """Refuse fields the provider does not know (a typo must not be silently ignored)."""
    known = set(allowed)
    for name in body:
        if name not in known:
            raise FieldError(str(name), f"is not a field of {provider} credentials")


def text(
    body: Mapping[str, Any],
    name: str,
    *,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
    rule: str = "",
    prefix: str = "",
) -> str | None:
    """A non-empty string field (stripped); None when optional and absent."""
    value = body.get(name)
    field = prefix + name
    if value is None:
        if required:
            raise FieldError(field, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise FieldError(field, "must be a non-empty string")
    if len(value) > MAX_FIELD:
        raise FieldError(field, f"must be at most {MAX_FIELD} characters")
    value = value.strip()
    if pattern is not None and not pattern.match(value):
        raise FieldError(field, rule or "has an invalid format")
    return value


def url(
    body: Mapping[str, Any],
    name: str,
    policy: OutboundPolicy,
    *,
    prefix: str = "",
    required: bool = False,
) -> str | None:
    """An outbound URL (endpoint, token URL) that passes the outbound rules."""
    value = text(body, name, required=required, prefix=prefix)
    if value is not None:
        check_endpoint_url(value, policy, field=prefix + name, allow_list=False)
    return value


def allowed_hosts(body: Mapping[str, Any]) -> list[str] | None:
    """The optional per-app allow-list of push-service hosts."""
    value = body.get("allowed_hosts")
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_ALLOWED_HOSTS:
        raise FieldError("allowed_hosts", f"must be a list of 1 to {MAX_ALLOWED_HOSTS} hosts")
    return [check_host_pattern(host, f"allowed_hosts.{i}") for i, host in enumerate(value)]


def private_key(pem: str, field: str) -> PrivateKeyTypes:
    """An unencrypted PEM private key; the message never quotes the key."""
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise FieldError(field, "is not an unencrypted PEM private key") from exc


def certificate(pem: str, field: str, now: datetime) -> x509.Certificate:
    """A PEM certificate that is valid now."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, UnicodeEncodeError) as exc:
        raise FieldError(field, "is not a PEM certificate") from exc
    if cert.not_valid_after_utc <= now:
        raise FieldError(field, f"expired on {cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_before_utc > now:
        raise FieldError(field, f"is not valid before {cert.not_valid_before_utc.isoformat()}")
    return cert


def key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """Whether `key` is the private half of the certificate's public key."""
    spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki))
