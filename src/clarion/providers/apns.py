"""Apple Push Notification service: the HTTP/2 provider API.

`ApnsProvider` renders a message as `POST /3/device/<token>` with the `apns-*`
headers and the `aps` payload (see `apns_payload`), signs it with a cached
JWT or relies on the transport's client certificate (see `apns_auth`), and
maps Apple's answer onto an `Outcome` through `APNS_REASONS`.

Certificate auth, in full:

    paths = write_client_certificate(credentials)
    transport = CurlTransport(client_cert=paths)   # or HttpxTransport
    provider = ApnsProvider(credentials, transport)

One transport per credential and environment: APNs binds a connection to the
first team (or certificate) that used it and answers `UnrelatedKeyIdInToken`
to any other.

`render` raises `PayloadTooLarge`, and `ApnsMessageError` (or its subclass
`InvalidDeviceToken`) for a message APNs cannot take; `send` turns those into
`Rejected` and `InvalidToken`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum, auto
from typing import Any

from clarion.clock import Clock, SystemClock
from clarion.model.message import Message, Recipient
from clarion.model.outcome import (
    AuthFailed,
    InvalidToken,
    Outcome,
    Rejected,
    Retry,
    Sent,
)
from clarion.model.platform import Platform
from clarion.providers.apns_auth import (
    HOSTS,
    ApnsCertificateCredentials,
    ApnsCredentials,
    ApnsEnvironment,
    ApnsJwtSigner,
    ApnsTokenCredentials,
    write_client_certificate,
)
from clarion.providers.apns_payload import ApnsMessageError, render_parts
from clarion.providers.base import (
    HttpRequest,
    HttpResponse,
    InvalidCredentials,
    PayloadTooLarge,
    Provider,
    Transport,
)

__all__ = [
    "APNS_REASONS",
    "ApnsCertificateCredentials",
    "ApnsEnvironment",
    "ApnsMessageError",
    "ApnsProvider",
    "ApnsTokenCredentials",
    "InvalidDeviceToken",
    "write_client_certificate",
]

_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]+")


class InvalidDeviceToken(ApnsMessageError):
    """The device token is not hexadecimal, so APNs could only call it `BadDeviceToken`."""


class Action(Enum):
    """What an APNs answer means for the push."""

    SENT = auto()
    RETRY = auto()
    REFRESH_TOKEN = auto()  # drop the cached JWT, then retry
    INVALID_TOKEN = auto()
    REJECTED = auto()
    AUTH_FAILED = auto()


APNS_REASONS: Mapping[str, Action] = {
    "BadCollapseId": Action.REJECTED,
    "BadDeviceToken": Action.INVALID_TOKEN,
    "BadExpirationDate": Action.REJECTED,
    "BadMessageId": Action.REJECTED,
    "BadPriority": Action.REJECTED,
    "BadTopic": Action.REJECTED,
    "DeviceTokenNotForTopic": Action.INVALID_TOKEN,
    "DuplicateHeaders": Action.REJECTED,
    "IdleTimeout": Action.RETRY,
    "InvalidPushType": Action.REJECTED,
    "MissingDeviceToken": Action.REJECTED,
    "MissingTopic": Action.REJECTED,
    "PayloadEmpty": Action.REJECTED,
    "TopicDisallowed": Action.REJECTED,
    "BadCertificate": Action.AUTH_FAILED,
    "BadCertificateEnvironment": Action.AUTH_FAILED,
    "ExpiredProviderToken": Action.REFRESH_TOKEN,
    "Forbidden": Action.REJECTED,
    "InvalidProviderToken": Action.AUTH_FAILED,
    "MissingProviderToken": Action.AUTH_FAILED,
    "UnrelatedKeyIdInToken": Action.AUTH_FAILED,
    "BadEnvironmentKeyIdInToken": Action.AUTH_FAILED,
    "BadPath": Action.REJECTED,
    "MethodNotAllowed": Action.REJECTED,
    "ExpiredToken": Action.INVALID_TOKEN,
    "Unregistered": Action.INVALID_TOKEN,
    "PayloadTooLarge": Action.REJECTED,
    "TooManyProviderTokenUpdates": Action.RETRY,
    "TooManyRequests": Action.RETRY,
    "InternalServerError": Action.RETRY,
    "ServiceUnavailable": Action.RETRY,
    "Shutdown": Action.RETRY,
}
"""Every reason string of Apple's table (PROTOCOLS.md §1.5) and what it means for us."""

APNS_STATUSES: Mapping[int, Action] = {
    200: Action.SENT,
    410: Action.INVALID_TOKEN,
    429: Action.RETRY,
    500: Action.RETRY,
    502: Action.RETRY,
    503: Action.RETRY,
    504: Action.RETRY,
}
"""The meaning of a status whose reason is missing or unknown; anything else is `Rejected`."""


class ApnsProvider(Provider):
    """APNs for one app's credential and environment.

    `endpoint` replaces Apple's host (an emulator, a proxy); `clock` dates the
    JWTs and measures their age.
    """

    platform = Platform.APNS

    def __init__(
        self,
        credentials: ApnsCredentials,
        transport: Transport,
        *,
        clock: Clock | None = None,
        endpoint: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(transport)
        try:
            environment = ApnsEnvironment(credentials.environment)
        except ValueError as exc:
            raise InvalidCredentials(f"unknown APNs environment {credentials.environment}") from exc
        self.credentials = credentials
        self._clock = clock or SystemClock()
        self._device_url = (endpoint or HOSTS[environment]).rstrip("/") + "/3/device/"
        self._timeout = timeout
        self._warm = not isinstance(credentials, ApnsTokenCredentials)
        self._warming = asyncio.Lock()
        self._signer = (
            ApnsJwtSigner(credentials, self._clock)
            if isinstance(credentials, ApnsTokenCredentials)
            else None
        )

    @property
    def signer(self) -> ApnsJwtSigner | None:
        """The JWT signer of token auth; None with certificate auth."""
        return self._signer

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        if not _HEX_TOKEN.fullmatch(recipient.token):
            raise InvalidDeviceToken("an APNs device token is hexadecimal")
        parts = render_parts(
            message,
            bundle_id=self.credentials.bundle_id,
            token_auth=self._signer is not None,
            now=self._clock.now(),
        )
        if len(parts.body) > parts.limit:
            raise PayloadTooLarge(len(parts.body), parts.limit)
        return HttpRequest(
            "POST",
            self._device_url + recipient.token,
            (*parts.headers, ("content-type", "application/json")),
            parts.body,
            self._timeout,
        )

    async def authorize(self, request: HttpRequest) -> HttpRequest:
        if self._signer is None:
            return request
        return request.with_header("authorization", self._signer.header())

    def classify(self, response: HttpResponse) -> Outcome:
        error = _error_body(response)
        reason = str(error.get("reason") or "")
        action = APNS_REASONS.get(reason) or APNS_STATUSES.get(response.status, Action.REJECTED)
        if action is Action.REFRESH_TOKEN and self._signer is not None:
            self._signer.invalidate()
        return _OUTCOMES[action](reason or f"HTTP {response.status}", error, response)

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        """As `Provider.send`, one at a time until APNs has accepted a push.

        With token auth APNs allows a single stream on a new connection until a
        request with a valid JWT succeeds; a burst on a cold connection would
        have its extra streams refused. The gate closes again when the
        connection is lost, since the transport then opens a new one.
        Certificate connections have no such rule and are never gated.
        """
        if not self._warm:
            async with self._warming:
                if not self._warm:
                    return self._note(await self._send(message, recipient))
        return self._note(await self._send(message, recipient))

    def _note(self, outcome: Outcome) -> Outcome:
        if isinstance(outcome, Sent):
            self._warm = True
        elif isinstance(outcome, Retry) and outcome.reason.startswith("transport"):
            self._warm = self._signer is None
        return outcome

    async def _send(self, message: Message, recipient: Recipient) -> Outcome:
        try:
            return await super().send(message, recipient)
        except InvalidDeviceToken as exc:
            return InvalidToken(f"BadDeviceToken: {exc}")
        except ApnsMessageError as exc:
            return Rejected(f"invalid_message: {exc}")


_OUTCOMES: Mapping[Action, Callable[[str, dict[str, Any], HttpResponse], Outcome]] = {
    Action.SENT: lambda _, __, r: Sent(r.headers.get("apns-unique-id") or r.headers.get("apns-id")),
    Action.RETRY: lambda reason, _, r: Retry(reason, _retry_after(r)),
    Action.REFRESH_TOKEN: lambda reason, _, __: Retry(reason),
    Action.INVALID_TOKEN: lambda reason, error, _: InvalidToken(
        reason, _since(error.get("timestamp"))
    ),
    Action.REJECTED: lambda reason, _, __: Rejected(reason),
    Action.AUTH_FAILED: lambda reason, _, __: AuthFailed(reason),
}


def _error_body(response: HttpResponse) -> dict[str, Any]:
    if response.status == 200 or not response.body:
        return {}
    try:
        body = json.loads(response.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _since(timestamp: Any) -> datetime | None:
    """APNs' 410 `timestamp` (milliseconds since the epoch) as an aware UTC datetime."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float | str):
        return None
    try:
        return datetime.fromtimestamp(float(timestamp) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _retry_after(response: HttpResponse) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
