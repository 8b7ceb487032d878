"""OAuth 2 access tokens for the push services that want a bearer token.

WNS, ADM and HMS use the RFC 6749 client-credentials grant
(`ClientCredentialsTokenSource`); FCM uses Google's RFC 7523 JWT-bearer grant
signed with a service account's RSA key (`ServiceAccountTokenSource`). Both
share the same behaviour, which is why they live together:

- `await source.token()` returns the cached access token and only fetches a
  new one when there is none or it is within `margin` seconds of expiry;
- concurrent callers share one fetch (single flight), so a burst of 1000 sends
  after start-up or expiry costs one token request;
- `source.invalidate(token)` drops the cached token after the service answered
  401, so the next call fetches a fresh one;
- time comes from the injected `Clock` (tests move a `FakeClock`).

`BearerTokenProvider` is the provider base for such services: it adds the
bearer header and, when the service refuses the token (401 by default),
drops it and sends once more with a fresh one. `parse_retry_after` reads the
`Retry-After` header these services send with 429/503.

Errors: the token endpoint's 400/401 (`invalid_client`, `unauthorized_client`,
`invalid_grant`, ...) raise `InvalidCredentials`; a connection failure, a
timeout, a 5xx or any other unusable answer raises `TransportError`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from clarion.clock import Clock
from clarion.model.message import Message, Recipient
from clarion.model.outcome import AuthFailed, Outcome, Rejected, Retry
from clarion.providers.base import (
    HttpRequest,
    HttpResponse,
    InvalidCredentials,
    PayloadTooLarge,
    Provider,
    Transport,
    TransportError,
)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded;charset=UTF-8"
ASSERTION_LIFETIME = 3600
"""Seconds a JWT-bearer assertion is valid; Google accepts at most one hour."""


class TokenSource(Protocol):
    """Something that hands out a valid bearer token for a push service."""

    async def token(self) -> str:
        """The cached access token, fetched when missing or within `margin` of expiry."""
        ...

    def invalidate(self, token: str | None = None) -> None:
        """Drop the cached token (after a 401); with `token`, only if it is still that one."""
        ...


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A token and the monotonic instant it stops being valid."""

    value: str
    expires_at: float


class CachingTokenSource:
    """The cache and single-flight logic; subclasses only say how to fetch.

    A token is refreshed `margin` seconds before it expires; when the service
    grants tokens shorter than twice the margin, half the lifetime is used
    instead so a short-lived token is not refetched on every call.
    """

    def __init__(self, transport: Transport, *, clock: Clock, margin: float) -> None:
        self.transport = transport
        self.clock = clock
        self.margin = margin
        self._current: AccessToken | None = None
        self._refresh_at = 0.0
        self._inflight: asyncio.Task[AccessToken] | None = None
        self.fetches = 0
        """How many token requests this source made (for metrics and tests)."""

    async def token(self) -> str:
        current = self._current
        if current is not None and self.clock.monotonic() < self._refresh_at:
            return current.value
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._refresh())
        # shield: one caller being cancelled must not cancel the fetch the others await.
        return (await asyncio.shield(self._inflight)).value

    def invalidate(self, token: str | None = None) -> None:
        if self._current is not None and (token is None or token == self._current.value):
            self._current = None

    async def _refresh(self) -> AccessToken:
        self.fetches += 1
        issued_at = self.clock.monotonic()
        response = await self.transport.request(self._token_request())
        value, lifetime = parse_token_response(response)
        margin = min(self.margin, lifetime / 2)
        fresh = AccessToken(value, issued_at + lifetime)
        self._current = fresh
        self._refresh_at = fresh.expires_at - margin
        return fresh

    def _token_request(self) -> HttpRequest:
        raise NotImplementedError


def parse_token_response(response: HttpResponse) -> tuple[str, float]:
    """The access token and its lifetime in seconds from a token endpoint's answer."""
    if response.status in (400, 401, 403):
        raise InvalidCredentials(f"token endpoint refused: {_oauth_error(response)}")
    if response.status != 200:
        raise TransportError(f"token endpoint answered {response.status}")
    try:
        body = json.loads(response.body)
        value = body["access_token"]
        lifetime = float(body.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError) as exc:
        raise TransportError(f"token endpoint answer unusable: {exc!r}") from exc
    if not isinstance(value, str) or not value:
        raise TransportError("token endpoint answer has no access_token")
    return value, lifetime


def _oauth_error(response: HttpResponse) -> str:
    try:
        body = json.loads(response.body)
    except ValueError:
        return f"HTTP {response.status}"
    if not isinstance(body, dict):
        return f"HTTP {response.status}"
    error = body.get("error", f"HTTP {response.status}")
    description = body.get("error_description")
    return f"{error} ({description})" if description else str(error)


class ClientCredentialsTokenSource(CachingTokenSource):
    """RFC 6749 section 4.4 client-credentials grant, as WNS, ADM and HMS use it.

    The id and secret travel as form fields (what WNS, ADM and HMS document);
    `scope` is sent when given (`notify.windows.com`, `messaging:push`).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        clock: Clock,
        margin: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(transport, clock=clock, margin=margin)
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.timeout = timeout

    def _token_request(self) -> HttpRequest:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.scope is not None:
            form["scope"] = self.scope
        return _form_post(self.token_url, form, self.timeout)


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A Google service-account key as downloaded from the Firebase console.

    Built with `ServiceAccount.from_json`, which names the first missing or
    malformed field in `InvalidCredentials`. `token_uri` is honoured, which is
    how tests point FCM at the emulator's token endpoint.
    """

    project_id: str
    private_key_id: str
    private_key: str = field(repr=False)
    client_email: str
    token_uri: str
    type: str = "service_account"

    REQUIRED = ("type", "project_id", "private_key_id", "private_key", "client_email", "token_uri")

    @classmethod
    def from_json(cls, source: str | bytes | Mapping[str, Any]) -> ServiceAccount:
        """Parse and validate the JSON text (or already decoded object)."""
        if isinstance(source, str | bytes):
            try:
                data = json.loads(source)
            except ValueError as exc:
                raise InvalidCredentials(f"service account is not JSON: {exc}") from exc
        else:
            data = source
        if not isinstance(data, Mapping):
            raise InvalidCredentials("service account must be a JSON object")
        for name in cls.REQUIRED:
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidCredentials(f"service account field {name!r} is missing or empty")
        if data["type"] != "service_account":
            raise InvalidCredentials(
                f"service account field 'type' is {data['type']!r}, expected 'service_account'"
            )
        if "@" not in data["client_email"]:
            raise InvalidCredentials("service account field 'client_email' is not an address")
        if not data["token_uri"].startswith(("https://", "http://")):
            raise InvalidCredentials("service account field 'token_uri' is not an http(s) URL")
        account = cls(
            project_id=data["project_id"],
            private_key_id=data["private_key_id"],
            private_key=data["private_key"],
            client_email=data["client_email"],
            token_uri=data["token_uri"],
        )
        account.signing_key()
        return account

    def signing_key(self) -> RSAPrivateKey:
        """The RSA private key; `InvalidCredentials` naming `private_key` if it is not one."""
        try:
            key = load_pem_private_key(self.private_key.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidCredentials(
                "service account field 'private_key' is not a PEM private key"
            ) from exc
        if not isinstance(key, RSAPrivateKey):
            raise InvalidCredentials("service account field 'private_key' is not an RSA key")
        return key


class ServiceAccountTokenSource(CachingTokenSource):
    """RFC 7523 JWT-bearer grant signed RS256 with a service account (FCM).

    The assertion carries `iss=client_email`, `scope`, `aud=token_uri`, `iat`
    and `exp=iat+3600`, with the key id in the header, as Google expects.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        service_account: ServiceAccount,
        scope: str,
        clock: Clock,
        margin: float = 300.0,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(transport, clock=clock, margin=margin)
        self.service_account = service_account
        self.scope = scope
        self.timeout = timeout
        self._key = service_account.signing_key()

    def assertion(self) -> str:
        """A freshly signed JWT-bearer assertion."""
        issued = int(self.clock.now().timestamp())
        account = self.service_account
        claims = {
            "iss": account.client_email,
            "scope": self.scope,
            "aud": account.token_uri,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": account.private_key_id}
        )

    def _token_request(self) -> HttpRequest:
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion()}
        return _form_post(self.service_account.token_uri, form, self.timeout)


def _form_post(url: str, form: Mapping[str, str], timeout: float) -> HttpRequest:
    return HttpRequest(
        "POST",
        url,
        headers=(("content-type", FORM_CONTENT_TYPE), ("accept", "application/json")),
        body=urlencode(form).encode(),
        timeout=timeout,
    )


class BearerTokenProvider(Provider):
    """A provider whose service takes an OAuth bearer token (FCM, HMS; WNS/ADM may reuse it).

    `authorize` adds `Authorization: Bearer <token>` from `tokens`. `send`
    follows the services' advice for a refused access token ("refresh and
    retry once"): when `token_refused(response)` is true it drops that token,
    fetches a fresh one and sends again; a second refusal means the credential
    itself is not accepted, which is `AuthFailed`.
    """

    def __init__(self, transport: Transport, tokens: TokenSource) -> None:
        super().__init__(transport)
        self.tokens = tokens

    def token_refused(self, response: HttpResponse) -> bool:
        """Whether the service refused the access token itself (default: HTTP 401)."""
        return response.status == 401

    async def authorize(self, request: HttpRequest) -> HttpRequest:
        return request.with_header("authorization", f"Bearer {await self.tokens.token()}")

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        try:
            request = self.render(message, recipient)
        except PayloadTooLarge as exc:
            return Rejected(f"payload_too_large: {exc}")
        for _attempt in range(2):
            try:
                authorized = await self.authorize(request)
                response = await self.transport.request(authorized)
            except InvalidCredentials as exc:
                return AuthFailed(str(exc))
            except TransportError as exc:
                return Retry(f"transport: {exc}")
            if not self.token_refused(response):
                return self.classify(response)
            self.tokens.invalidate(_bearer(authorized))
        return AuthFailed(f"a freshly issued access token was refused: {self.classify(response)}")


def _bearer(request: HttpRequest) -> str | None:
    for name, value in request.headers:
        if name.lower() == "authorization" and value.startswith("Bearer "):
            return value[len("Bearer ") :]
    return None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
