"""Credential bodies of the providers API, validated field by field.

One validator per platform turns a `PUT /v1/apps/{app}/providers/{provider}`
body into `ValidatedCredentials`: the configuration to seal, a public view
with every secret replaced by `"[redacted]"`, warnings (a certificate that
expires within 30 days, a generated VAPID key), the expiry date, and the
outbound URLs the caller must still resolve (`resolve_public`). Bad fields
raise `InvalidCredentialBody` naming each one (`private_key`,
`service_account.private_key`, `certificate`, `subject`, `endpoint`...);
messages state the rule and never quote a value. Unknown fields are refused.

`endpoint` (the service's base URL) is accepted where the service has one;
Web Push and WNS send to each device's own URL, so there it is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from clarion.model.errors import FieldError
from clarion.model.platform import Platform
from clarion.providers import credential_checks as check
from clarion.providers.apns_auth import ApnsEnvironment
from clarion.providers.base import InvalidCredentials
from clarion.providers.credential_checks import REDACTED, FieldCollector, InvalidCredentialBody
from clarion.providers.oauth import ServiceAccount
from clarion.providers.outbound import OutboundPolicy
from clarion.providers.vapid import check_subject, generate_vapid_keys, vapid_public_key

EXPIRY_WARNING = timedelta(days=30)
_APPLE_ID = re.compile(r"^[A-Z0-9]{10}$")
_BUNDLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,154}$")
_BB_APP_ID = re.compile(r"^[\x21-\x39\x3b-\x7e]{1,200}$")


@dataclass(frozen=True, slots=True)
class ValidatedCredentials:
    """A credentials body that passed validation."""

    config: dict[str, Any] = field(repr=False)
    """What to seal; `build_provider` takes it back once opened."""
    public: dict[str, Any]
    """The configuration with every secret redacted: safe for responses and logs."""
    warnings: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    urls: tuple[tuple[str, str], ...] = ()
    """`(field, url)` of each outbound URL given, for `resolve_public`."""


def validate_credentials(
    platform: Platform, body: Mapping[str, Any], *, policy: OutboundPolicy, now: datetime
) -> ValidatedCredentials:
    """Validate a credentials body for `platform`; `InvalidCredentialBody` names bad fields."""
    if not isinstance(body, Mapping):
        raise InvalidCredentialBody([FieldError("body", "must be a JSON object")])
    return _VALIDATORS[platform](body, policy, now)


def _urls(config: Mapping[str, Any], *names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, config[name]) for name in names if config.get(name))


def _apns(body: Mapping[str, Any], policy: OutboundPolicy, now: datetime) -> ValidatedCredentials:
    auth = body.get("auth") or ("certificate" if "certificate" in body else "token")
    if auth == "certificate":
        return _apns_certificate(body, policy, now)
    checks = FieldCollector()
    if auth != "token":
        checks.errors.append(FieldError("auth", "must be 'token' or 'certificate'"))
    common = ("auth", "bundle_id", "environment", "endpoint", "private_key")
    checks.run(lambda: check.only_fields(body, (*common, "key_id", "team_id"), "apns token"))
    config: dict[str, Any] = {"auth": "token", **_apns_common(body, policy, checks)}
    apple_id = "must be the 10-character identifier from the Apple developer account"
    for name in ("key_id", "team_id"):
        config[name] = checks.run(
            lambda n=name: check.text(body, n, pattern=_APPLE_ID, rule=apple_id)  # type: ignore[misc]
        )
    pem = checks.run(lambda: check.text(body, "private_key"))
    if pem is not None:
        checks.run(lambda: _p256(pem))
    checks.done()
    config["private_key"] = pem
    public = {k: v for k, v in config.items() if k != "private_key" and v is not None}
    return ValidatedCredentials(
        config, {**public, "private_key": REDACTED}, urls=_urls(config, "endpoint")
    )


def _p256(pem: str) -> None:
    key = check.private_key(pem, "private_key")
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise FieldError("private_key", "must be the EC P-256 key of a .p8 file")


def _apns_common(
    body: Mapping[str, Any], policy: OutboundPolicy, checks: FieldCollector
) -> dict[str, Any]:
    bundle_rule = "must be the app's bundle id (letters, digits, '.', '-')"
    environment = body.get("environment", "production")
    if environment not in {e.value for e in ApnsEnvironment}:
        checks.errors.append(FieldError("environment", "must be 'production' or 'sandbox'"))
    return {
        "bundle_id": checks.run(
            lambda: check.text(body, "bundle_id", pattern=_BUNDLE_ID, rule=bundle_rule)
        ),
        "environment": environment,
        "endpoint": checks.run(lambda: check.url(body, "endpoint", policy)),
    }


def _apns_certificate(
    body: Mapping[str, Any], policy: OutboundPolicy, now: datetime
) -> ValidatedCredentials:
    checks = FieldCollector()
    allowed = ("auth", "bundle_id", "environment", "endpoint", "certificate", "private_key")
    checks.run(lambda: check.only_fields(body, allowed, "apns certificate"))
    config: dict[str, Any] = {"auth": "certificate", **_apns_common(body, policy, checks)}
    cert_pem = checks.run(lambda: check.text(body, "certificate"))
    cert = checks.run(lambda: check.certificate(cert_pem, "certificate", now)) if cert_pem else None
    key_pem = checks.run(lambda: check.text(body, "private_key"))
    key = checks.run(lambda: check.private_key(key_pem, "private_key")) if key_pem else None
    if cert is not None and key is not None and not check.key_matches(cert, key):
        checks.errors.append(FieldError("private_key", "does not match the certificate"))
    checks.done()
    assert cert is not None  # noqa: S101 - checks.done() raised otherwise
    config.update(certificate=f"{cert_pem}\n", private_key=f"{key_pem}\n")
    expires = cert.not_valid_after_utc
    public = {k: v for k, v in config.items() if k not in ("certificate", "private_key")}
    public["certificate"] = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "expires_at": expires.isoformat(),
    }
    warnings = []
    if expires - now <= EXPIRY_WARNING:
        warnings.append(f"the certificate expires on {expires.isoformat()}, within 30 days")
    return ValidatedCredentials(
        config,
        {**{k: v for k, v in public.items() if v is not None}, "private_key": REDACTED},
        warnings,
        expires,
        _urls(config, "endpoint"),
    )


def _fcm(body: Mapping[str, Any], policy: OutboundPolicy, now: datetime) -> ValidatedCredentials:
    checks = FieldCollector()
    checks.run(lambda: check.only_fields(body, ("service_account", "endpoint"), "fcm"))
    endpoint = checks.run(lambda: check.url(body, "endpoint", policy))
    account = body.get("service_account")
    if isinstance(account, str):
        try:
            account = json.loads(account)
        except ValueError:
            account = None
            checks.errors.append(FieldError("service_account", "is not valid JSON"))
    elif not isinstance(account, Mapping):
        checks.errors.append(
            FieldError("service_account", "is required: the service-account JSON object")
        )
        account = None
    if isinstance(account, Mapping):
        _service_account(account, policy, checks)
    checks.done()
    assert isinstance(account, Mapping)  # noqa: S101 - checks.done() raised otherwise
    config: dict[str, Any] = {"service_account": dict(account)}
    if endpoint:
        config["endpoint"] = endpoint
    shown = ("type", "project_id", "private_key_id", "client_email", "token_uri")
    public_account = {k: account[k] for k in shown} | {"private_key": REDACTED}
    public: dict[str, Any] = {"service_account": public_account}
    if endpoint:
        public["endpoint"] = endpoint
    urls = (("service_account.token_uri", account["token_uri"]), *_urls(config, "endpoint"))
    return ValidatedCredentials(config, public, urls=urls)


def _service_account(
    account: Mapping[str, Any], policy: OutboundPolicy, checks: FieldCollector
) -> None:
    prefix = "service_account."
    for name in ServiceAccount.REQUIRED:
        if name == "token_uri":
            checks.run(
                lambda: check.url(account, "token_uri", policy, prefix=prefix, required=True)
            )
        else:
            checks.run(lambda n=name: check.text(account, n, prefix=prefix))  # type: ignore[misc]
    if account.get("type") not in (None, "service_account"):
        checks.errors.append(FieldError(prefix + "type", "must be 'service_account'"))
    if isinstance(account.get("client_email"), str) and "@" not in account["client_email"]:
        checks.errors.append(FieldError(prefix + "client_email", "must be an email address"))
    pem = account.get("private_key")
    if isinstance(pem, str) and pem.strip():
        checks.run(lambda: _rsa(pem, prefix + "private_key"))


def _rsa(pem: str, field: str) -> None:
    if not isinstance(check.private_key(pem, field), RSAPrivateKey):
        raise FieldError(field, "must be an RSA private key")


def _webpush(
    body: Mapping[str, Any], policy: OutboundPolicy, now: datetime
) -> ValidatedCredentials:
    checks = FieldCollector()
    if "endpoint" in body:
        checks.errors.append(
            FieldError("endpoint", "Web Push sends to each subscription's own URL; not a field")
        )
    allowed = ("subject", "vapid_private_key", "allowed_hosts", "endpoint")
    checks.run(lambda: check.only_fields(body, allowed, "webpush"))
    subject = checks.run(lambda: check.text(body, "subject"))
    if subject is not None:
        checks.run(lambda: _subject(subject))
    pem = checks.run(lambda: check.text(body, "vapid_private_key", required=False))
    public_key = None if pem is None else checks.run(lambda: _vapid_public(pem))
    hosts = checks.run(lambda: check.allowed_hosts(body))
    checks.done()
    warnings: list[str] = []
    if pem is None:
        pair = generate_vapid_keys()
        pem, public_key = pair.private_pem, pair.public_key
        warnings.append("a VAPID key pair was generated; subscribe browsers with vapid_public_key")
    config: dict[str, Any] = {"subject": subject, "vapid_private_key": pem}
    public: dict[str, Any] = {
        "subject": subject,
        "vapid_public_key": public_key,
        "vapid_private_key": REDACTED,
    }
    if hosts is not None:
        config["allowed_hosts"] = public["allowed_hosts"] = hosts
    return ValidatedCredentials(config, public, warnings)


def _subject(subject: str) -> None:
    try:
        check_subject(subject)
    except InvalidCredentials as exc:
        raise FieldError("subject", "must be a mailto: or https: contact URI") from exc


def _vapid_public(pem: str | None) -> str:
    try:
        return vapid_public_key(pem or "")
    except InvalidCredentials as exc:
        raise FieldError("vapid_private_key", "must be an EC P-256 private key in PEM") from exc


def _client_secret(
    provider: str, id_name: str, extra: tuple[str, ...]
) -> Callable[[Mapping[str, Any], OutboundPolicy, datetime], ValidatedCredentials]:
    """Validator for the OAuth client-credentials providers (WNS, ADM, HMS)."""

    def validate(
        body: Mapping[str, Any], policy: OutboundPolicy, now: datetime
    ) -> ValidatedCredentials:
        checks = FieldCollector()
        if "endpoint" in body and "endpoint" not in extra:
            checks.errors.append(
                FieldError("endpoint", "WNS sends to each channel's own URI; not a field")
            )
        names = (id_name, "client_secret", "token_url", "endpoint", *extra)
        checks.run(lambda: check.only_fields(body, names, provider))
        config: dict[str, Any] = {
            id_name: checks.run(lambda: check.text(body, id_name)),
            "client_secret": checks.run(lambda: check.text(body, "client_secret")),
            "token_url": checks.run(lambda: check.url(body, "token_url", policy)),
        }
        if "endpoint" in extra:
            config["endpoint"] = checks.run(lambda: check.url(body, "endpoint", policy))
        if "allowed_hosts" in extra:
            config["allowed_hosts"] = checks.run(lambda: check.allowed_hosts(body))
        checks.done()
        config = {k: v for k, v in config.items() if v is not None}
        public = {k: v for k, v in config.items() if k != "client_secret"}
        return ValidatedCredentials(
            config,
            {**public, "client_secret": REDACTED},
            urls=_urls(config, "token_url", "endpoint"),
        )

    return validate


def _blackberry(
    body: Mapping[str, Any], policy: OutboundPolicy, now: datetime
) -> ValidatedCredentials:
    checks = FieldCollector()
    allowed = ("endpoint", "application_id", "password", "address_format")
    checks.run(lambda: check.only_fields(body, allowed, "blackberry"))
    app_rule = "must be printable ASCII without spaces or ':' (the push application id)"
    config: dict[str, Any] = {
        "endpoint": checks.run(lambda: check.url(body, "endpoint", policy, required=True)),
        "application_id": checks.run(
            lambda: check.text(body, "application_id", pattern=_BB_APP_ID, rule=app_rule)
        ),
        "password": checks.run(lambda: check.text(body, "password", required=False)),
        "address_format": body.get("address_format", "pin"),
    }
    if config["address_format"] not in ("pin", "email"):
        checks.errors.append(FieldError("address_format", "must be 'pin' or 'email'"))
    checks.done()
    config = {k: v for k, v in config.items() if v is not None}
    public = {k: v for k, v in config.items() if k != "password"}
    if "password" in config:
        public["password"] = REDACTED
    return ValidatedCredentials(config, public, urls=_urls(config, "endpoint"))


_VALIDATORS: dict[
    Platform, Callable[[Mapping[str, Any], OutboundPolicy, datetime], ValidatedCredentials]
] = {
    Platform.APNS: _apns,
    Platform.FCM: _fcm,
    Platform.WEBPUSH: _webpush,
    Platform.WNS: _client_secret("wns", "client_id", ("allowed_hosts",)),
    Platform.ADM: _client_secret("adm", "client_id", ("endpoint",)),
    Platform.HMS: _client_secret("hms", "app_id", ("endpoint",)),
    Platform.BLACKBERRY: _blackberry,
}
