"""Amazon Device Messaging (ADM): pushes to Fire OS devices.

ADM takes an OAuth client-credentials token (`scope=messaging:push`, cached and
refreshed before expiry and after a 401) and one JSON POST per registration
ID. Everything the device gets travels in `data`, a map of strings, so the
common content is flattened into it: `title`, `subtitle`, `body`, `image`,
`url`, `sound`, `badge` and `actions` (JSON) next to the notification's own
`data` (non-string values JSON-encoded; the content fields win a clash). The
`md5` ADM can check is computed over the final `data` as ADM defines it: pairs
sorted by the UTF-8 bytes of their keys, joined as `k:v,k:v`, MD5, base64.

The notification's `adm` object (`Message.overrides`) is merged into the body:
its `data` into `data`, anything else (`consolidationKey`, `expiresAfter`,
`notification`...) replaces the top-level field; `"md5": false` leaves the
checksum out and a string is sent as given.

A 200 whose `registrationID` differs from the one sent means ADM has a newer
ID for the app instance: `send` returns `TokenReplaced` with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from clarion.clock import Clock
from clarion.model.content import Content
from clarion.model.message import Message, Recipient
from clarion.model.outcome import (
    AuthFailed,
    InvalidToken,
    Outcome,
    Rejected,
    Retry,
    Sent,
    TokenReplaced,
)
from clarion.model.platform import Platform
from clarion.providers.base import HttpRequest, HttpResponse, PayloadTooLarge, Transport
from clarion.providers.oauth import (
    BearerTokenProvider,
    ClientCredentialsTokenSource,
    parse_retry_after,
)

ADM_TOKEN_URL = "https://api.amazon.com/auth/o2/token"  # noqa: S105 - a URL
ADM_ENDPOINT = "https://api.amazon.com"
ADM_SCOPE = "messaging:push"
TYPE_VERSION = "com.amazon.device.messaging.ADMMessage@1.0"
ACCEPT_TYPE = "com.amazon.device.messaging.ADMSendResult@1.0"
MAX_PAYLOAD = 6 * 1024
"""Bytes of JSON body; ADM answers 413 `MessageTooLarge` above it."""
MIN_EXPIRES_AFTER = 60
MAX_EXPIRES_AFTER = 31 * 24 * 3600
CONTENT_FIELDS = ("title", "subtitle", "body", "image", "url", "sound", "badge")
TOKEN_REJECTED = "AccessTokenExpired"  # noqa: S105 - a reason

# ADM's `reason` first, then the HTTP status, then the status class.
ADM_REASONS: dict[str, type[Outcome]] = {
    "InvalidRegistrationId": InvalidToken,
    "Unregistered": InvalidToken,
    "InvalidData": Rejected,
    "InvalidConsolidationKey": Rejected,
    "InvalidExpiration": Rejected,
    "InvalidChecksum": Rejected,
    "InvalidType": Rejected,
    "MessageTooLarge": Rejected,
    TOKEN_REJECTED: Retry,
    "MaxRateExceeded": Retry,
}
ADM_STATUSES: dict[int, tuple[type[Outcome], str]] = {
    200: (Sent, "ok"),
    400: (Rejected, "bad_request"),
    401: (Retry, TOKEN_REJECTED),
    403: (AuthFailed, "forbidden"),
    410: (InvalidToken, "Unregistered"),
    413: (Rejected, "MessageTooLarge"),
    429: (Retry, "MaxRateExceeded"),
    500: (Retry, "server_error"),
    503: (Retry, "unavailable"),
}
ADM_STATUS_CLASSES: dict[int, tuple[type[Outcome], str]] = {
    4: (Rejected, "client_error"),
    5: (Retry, "server_error"),
}


@dataclass(frozen=True, slots=True)
class AdmCredentials:
    """An ADM security profile's client id and secret.

    `endpoint` is the API host (regional hosts, emulators); `token_url` is
    Login with Amazon's token endpoint.
    """

    client_id: str
    client_secret: str = field(repr=False)
    token_url: str = ADM_TOKEN_URL
    endpoint: str = ADM_ENDPOINT


class AdmProvider(BearerTokenProvider):
    """Sends to ADM registration IDs with a cached OAuth token.

    A refused token (401 `AccessTokenExpired`) is dropped and the push sent
    once more with a fresh one (`BearerTokenProvider.send`); a second refusal
    is `AuthFailed`.
    """

    platform: ClassVar[Platform] = Platform.ADM

    def __init__(
        self,
        transport: Transport,
        credentials: AdmCredentials,
        *,
        clock: Clock,
        timeout: float = 10.0,
    ) -> None:
        tokens = ClientCredentialsTokenSource(
            transport,
            token_url=credentials.token_url,
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            scope=ADM_SCOPE,
            clock=clock,
        )
        super().__init__(transport, tokens)
        self.credentials = credentials
        self.clock = clock
        self.timeout = timeout

    def url(self, registration_id: str) -> str:
        base = self.credentials.endpoint.rstrip("/")
        return f"{base}/messaging/registrations/{quote(registration_id, safe='')}/messages"

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        body = json.dumps(self.payload(message), ensure_ascii=False, separators=(",", ":")).encode()
        if len(body) > MAX_PAYLOAD:
            raise PayloadTooLarge(len(body), MAX_PAYLOAD)
        headers = (
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("x-amzn-type-version", TYPE_VERSION),
            ("x-amzn-accept-type", ACCEPT_TYPE),
        )
        return HttpRequest("POST", self.url(recipient.token), headers, body, self.timeout)

    def payload(self, message: Message) -> dict[str, Any]:
        """The ADMMessage JSON object, overrides merged and md5 computed last."""
        overrides = dict(message.overrides)
        data = content_data(message.content)
        extra = overrides.pop("data", None)
        if isinstance(extra, Mapping):
            data.update(string_map(extra))
        payload: dict[str, Any] = {"data": data}
        if message.collapse_key:
            payload["consolidationKey"] = message.collapse_key
        expires_after = self._expires_after(message)
        if expires_after is not None:
            payload["expiresAfter"] = expires_after
        md5 = overrides.pop("md5", True)
        payload.update(overrides)
        if md5 is True:
            payload["md5"] = data_md5(data)
        elif isinstance(md5, str):
            payload["md5"] = md5
        return payload

    def _expires_after(self, message: Message) -> int | None:
        seconds = message.seconds_left(self.clock.now())
        if seconds is None:
            return None
        return min(MAX_EXPIRES_AFTER, max(MIN_EXPIRES_AFTER, seconds))

    def classify(self, response: HttpResponse) -> Outcome:
        """The outcome by ADM's `reason`, else by status; a 200 is `Sent` with the
        `registrationID` ADM answered, and a refused token is dropped."""
        answer = _json_object(response.body)
        reason = str(answer.get("reason") or "")
        kind, fallback = ADM_STATUSES.get(response.status) or ADM_STATUS_CLASSES.get(
            response.status // 100, (Rejected, "unexpected_status")
        )
        if response.status != 200 and reason in ADM_REASONS:
            kind = ADM_REASONS[reason]
        reason = reason or fallback
        if reason == TOKEN_REJECTED:
            self.tokens.invalidate()
        if kind is Sent:
            current = answer.get("registrationID")
            return Sent(current if isinstance(current, str) else None)
        full = f"{reason} ({response.status})"
        if kind is Retry:
            after = parse_retry_after(response.headers.get("retry-after"), self.clock.now())
            return Retry(full, after)
        return kind(full)

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        """`TokenReplaced` when ADM answers with a newer registration ID."""
        outcome = await super().send(message, recipient)
        if isinstance(outcome, Sent) and outcome.provider_id not in (None, recipient.token):
            return TokenReplaced(outcome.provider_id)
        return outcome


def content_data(content: Content) -> dict[str, str]:
    """The content flattened into ADM's string map (content fields over `data`)."""
    data = string_map(content.data)
    for name in CONTENT_FIELDS:
        value = getattr(content, name)
        if value is not None:
            data[name] = str(value)
    if content.actions:
        actions = [
            {"id": a.id, "title": a.title, **({"url": a.url} if a.url else {})}
            for a in content.actions
        ]
        data["actions"] = json.dumps(actions, ensure_ascii=False, separators=(",", ":"))
    return data


def string_map(values: Mapping[str, Any]) -> dict[str, str]:
    """Strings stay; anything else becomes its JSON text."""
    return {
        str(k): v
        if isinstance(v, str)
        else json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        for k, v in values.items()
    }


def data_md5(data: Mapping[str, str]) -> str:
    """ADM's checksum of `data`: sorted by UTF-8 key bytes, `k:v` joined by commas."""
    ordered = sorted(data.items(), key=lambda item: item[0].encode())
    text = ",".join(f"{k}:{v}" for k, v in ordered)
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()  # noqa: S324


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
