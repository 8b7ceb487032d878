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
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from clarion.providers.apns_payload import (
    ApnsBody,
    ApnsMessageError,
    render_body,
    render_headers,
)
from clarion.providers.base import (
    HttpRequest,
    HttpResponse,
    InvalidCredentials,
    PayloadTooLarge,
    Provider,
    Transport,
    TransportError,
)
from clarion.providers.batch import send_pooled

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
_CONTENT_TYPE = ("content-type", "application/json")
_BODY_CACHE_SIZE = 256
"""Rendered payloads a provider keeps: a few notifications in flight, a few locales each."""


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
        self._bodies: dict[tuple[Any, ...], tuple[ApnsBody, Message]] = {}

    @property
    def signer(self) -> ApnsJwtSigner | None:
        """The JWT signer of token auth; None with certificate auth."""
        return self._signer

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        return self._request(message, recipient, (), self._clock.now())

    async def authorize(self, request: HttpRequest) -> HttpRequest:
        if self._signer is None:
            return request
        return request.with_header("authorization", self._signer.header())

    def classify(self, response: HttpResponse) -> Outcome:
        if response.status == 200:  # the common case, as the table below would say
            headers = response.headers
            return Sent(headers.get("apns-unique-id") or headers.get("apns-id"))
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

    async def send_batch(self, pushes: Sequence[tuple[Message, Recipient]]) -> list[Outcome]:
        """Every push of a batch, each one's outcome in order (see `clarion.providers.batch`).

        Through a transport with `request_all` (`CurlTransport`) the batch is
        rendered with one JWT and one clock reading and handed over in one
        go; any other transport sends push by push. A cold token-auth
        connection first gets single pushes, as `send` does.
        """
        request_all: RequestAll | None = getattr(self.transport, "request_all", None)
        if request_all is None:
            return await send_pooled(self.send, pushes)
        outcomes: list[Outcome | None] = [None] * len(pushes)
        first = 0
        while not self._warm and first < len(pushes):
            outcomes[first] = await self.send(*pushes[first])
            first += 1
        now = self._clock.now()
        rendered: list[int] = []
        requests: list[HttpRequest] = []
        try:
            auth = self._auth()
        except Exception as exc:
            return [outcome or _unsendable(exc) for outcome in outcomes]
        shared: dict[tuple[Any, ...], _Shared] = {}
        for index in range(first, len(pushes)):
            message, recipient = pushes[index]
            try:
                requests.append(self._batch_request(message, recipient, auth, now, shared))
            except Exception as exc:
                outcomes[index] = _unsendable(exc)
                continue
            rendered.append(index)
        answers = await request_all(requests)
        note, classify = self._note, self.classify
        for index, answer in zip(rendered, answers, strict=True):
            if isinstance(answer, TransportError):
                outcomes[index] = note(Retry(f"transport: {answer}"))
            else:
                outcomes[index] = note(classify(answer))
        return [outcome or Retry("provider_error: no answer") for outcome in outcomes]

    async def _send(self, message: Message, recipient: Recipient) -> Outcome:
        """`Provider.send` in one frame: render, authorize, send, classify.

        The same steps and the same outcomes for every error as `render` +
        `authorize` + `transport.request` + `classify`, without the extra
        awaits and the copy of the request that adding a header makes.
        """
        try:
            signer = self._signer
            auth = () if signer is None else (("authorization", signer.header()),)
            request = self._request(message, recipient, auth, self._clock.now())
        except (PayloadTooLarge, ApnsMessageError, InvalidCredentials) as exc:
            return _unsendable(exc)
        try:
            response = await self.transport.request(request)
        except InvalidCredentials as exc:
            return AuthFailed(str(exc))
        except TransportError as exc:
            return Retry(f"transport: {exc}")
        return self.classify(response)

    def _auth(self) -> tuple[tuple[str, str], ...]:
        signer = self._signer
        return () if signer is None else (("authorization", signer.header()),)

    def _batch_request(
        self,
        message: Message,
        recipient: Recipient,
        auth: tuple[tuple[str, str], ...],
        now: datetime,
        shared: dict[tuple[Any, ...], _Shared],
    ) -> HttpRequest:
        """As `_request`, but what the pushes of a batch share is rendered once per batch.

        The devices of one notification get `Message`s that differ only in
        `push_id` (and in `content` per locale or when templated): the body
        and every header but `apns-id` are rendered for the first of them and
        reused, keyed by the identity of the shared objects (alive for the
        whole batch, so their ids stay theirs) and the scalars by value.
        """
        token = recipient.token
        if not _HEX_TOKEN.fullmatch(token):
            raise InvalidDeviceToken("an APNs device token is hexadecimal")
        key = (
            id(message.content),
            id(message.overrides),
            message.category,
            message.priority,
            message.expires_at,
            message.ttl,
            message.collapse_key,
        )
        parts = shared.get(key)
        if parts is None:
            parts = shared[key] = self._shared(message, auth, now)
        before, after, body = parts
        return HttpRequest(
            "POST",
            self._device_url + token,
            (*before, ("apns-id", str(message.push_id)), *after),
            body,
            self._timeout,
        )

    def _shared(
        self, message: Message, auth: tuple[tuple[str, str], ...], now: datetime
    ) -> _Shared:
        """The headers around `apns-id` and the body, as `_request` renders them."""
        body = self._body(message)
        if len(body.body) > body.limit:
            raise PayloadTooLarge(len(body.body), body.limit)
        headers = render_headers(message, body, now)
        at = next(i for i, (name, _) in enumerate(headers) if name == "apns-id")
        return headers[:at], (*headers[at + 1 :], _CONTENT_TYPE, *auth), body.body

    def _request(
        self,
        message: Message,
        recipient: Recipient,
        auth: tuple[tuple[str, str], ...],
        now: datetime,
    ) -> HttpRequest:
        token = recipient.token
        if not _HEX_TOKEN.fullmatch(token):
            raise InvalidDeviceToken("an APNs device token is hexadecimal")
        body = self._body(message)
        if len(body.body) > body.limit:
            raise PayloadTooLarge(len(body.body), body.limit)
        headers = render_headers(message, body, now)
        return HttpRequest(
            "POST",
            self._device_url + token,
            (*headers, _CONTENT_TYPE, *auth),
            body.body,
            self._timeout,
        )

    def _body(self, message: Message) -> ApnsBody:
        """The rendered payload, reused while the same push goes to device after device.

        The sender builds one `Message` per device, but their content, category
        and overrides are the same objects or equal strings. The key holds the
        content's scalar fields by value and its `data` and the overrides by
        identity (equal dicts may render differently: `1 == True`); the cached
        message keeps those objects alive so their ids stay theirs.
        """
        content = message.content
        data = content.data or None
        overrides = message.overrides or None
        badge = content.badge
        key = (
            content.title,
            content.subtitle,
            content.body,
            content.image,
            badge.__class__,
            badge,
            content.sound,
            content.url,
            message.category,
            id(data),
            id(overrides),
        )
        cached = self._bodies.get(key)
        if cached is not None:
            return cached[0]
        body = render_body(
            message, bundle_id=self.credentials.bundle_id, token_auth=self._signer is not None
        )
        if len(self._bodies) >= _BODY_CACHE_SIZE:
            self._bodies.clear()
        self._bodies[key] = (body, message)
        return body

    def _note(self, outcome: Outcome) -> Outcome:
        if isinstance(outcome, Sent):
            self._warm = True
        elif isinstance(outcome, Retry) and outcome.reason.startswith("transport"):
            self._warm = self._signer is None
        return outcome


_Shared = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], bytes]
"""Headers before `apns-id`, headers after it, body: what the pushes of a batch share."""

RequestAll = Callable[[Sequence[HttpRequest]], Awaitable[list[HttpResponse | TransportError]]]
"""`CurlTransport.request_all`: a batch of requests in, each one's answer or error out."""


def _unsendable(exc: Exception) -> Outcome:
    """The outcome of a push that could not be rendered or signed (never sent)."""
    match exc:
        case PayloadTooLarge():
            return Rejected(f"payload_too_large: {exc}")
        case InvalidDeviceToken():
            return InvalidToken(f"BadDeviceToken: {exc}")
        case ApnsMessageError():
            return Rejected(f"invalid_message: {exc}")
        case InvalidCredentials():
            return AuthFailed(str(exc))
    return Retry(f"provider_error: {type(exc).__name__}")


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
