"""Firebase Cloud Messaging over the HTTP v1 API (Android, and iOS/web through Firebase).

One request per push: `POST {endpoint}/v1/projects/{project_id}/messages:send`
with `{"message": {...}}`, authorized by an OAuth token obtained with the
service account's JWT-bearer grant (see `clarion.providers.oauth`). The
common content becomes the `notification` template plus `android`, `apns` and
`webpush` blocks that carry priority, expiry and collapse identity in each
platform's own terms; the notification's `fcm` object is deep-merged last,
so it can set or (with `null`) remove anything.

Answers are `google.rpc.Status` objects; the FCM-specific `errorCode` in the
`FcmError` detail decides the outcome (`FCM_ERRORS`), then the canonical
status, then the HTTP status. A 401 without an FCM error code means our
access token was refused: the token is dropped and the push is sent once more
with a fresh one (Google's advice); if that fails too, the service account
itself is not accepted and the outcome is `AuthFailed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clarion.clock import Clock
from clarion.model.content import Content
from clarion.model.message import Message, Priority, Recipient
from clarion.model.outcome import AuthFailed, InvalidToken, Outcome, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import (
    HttpRequest,
    HttpResponse,
    InvalidCredentials,
    PayloadTooLarge,
    Transport,
)
from clarion.providers.oauth import (
    BearerTokenProvider,
    ServiceAccount,
    ServiceAccountTokenSource,
    TokenSource,
    parse_retry_after,
)

FCM_ENDPOINT = "https://fcm.googleapis.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
MAX_PAYLOAD = 4096
"""Bytes of the message without its target (keys and values), FCM's limit."""
MAX_TTL = 2_419_200
QUOTA_MIN_DELAY = 60.0
"""Google asks for at least a minute's pause after QUOTA_EXCEEDED without Retry-After."""
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True, slots=True)
class FcmCredentials:
    """A Firebase project's service account and the base URL to send to."""

    service_account: ServiceAccount
    endpoint: str = FCM_ENDPOINT

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FcmCredentials:
        """From the credentials API body `{"service_account": {...}, "endpoint"?}`."""
        account = config.get("service_account")
        if not isinstance(account, str | bytes | Mapping):
            raise InvalidCredentials("field 'service_account' is missing")
        endpoint = config.get("endpoint") or FCM_ENDPOINT
        if not isinstance(endpoint, str):
            raise InvalidCredentials("field 'endpoint' must be a URL")
        return cls(ServiceAccount.from_json(account), endpoint)

    @property
    def send_url(self) -> str:
        project = self.service_account.project_id
        return f"{self.endpoint.rstrip('/')}/v1/projects/{project}/messages:send"


@dataclass(frozen=True, slots=True)
class FcmError:
    """The parts of an error answer that decide the outcome."""

    http_status: int
    error_code: str | None
    status: str | None
    message: str
    fields: tuple[str, ...]
    retry_after: float | None

    @property
    def about_token(self) -> bool:
        return "message.token" in self.fields or "registration token" in self.message.lower()


def _invalid_argument(error: FcmError) -> Outcome:
    if error.about_token:
        return InvalidToken(f"INVALID_ARGUMENT: {error.message}")
    return Rejected(f"INVALID_ARGUMENT: {error.message}")


def _retry(error: FcmError) -> Outcome:
    return Retry(f"{error.error_code or error.status or error.http_status}", error.retry_after)


def _quota(error: FcmError) -> Outcome:
    after = error.retry_after if error.retry_after is not None else QUOTA_MIN_DELAY
    return Retry(f"QUOTA_EXCEEDED: {error.message}", after)


def _invalid_token(error: FcmError) -> Outcome:
    return InvalidToken(f"{error.error_code or error.status}: {error.message}")


def _rejected(error: FcmError) -> Outcome:
    return Rejected(f"{error.error_code or error.status or error.http_status}: {error.message}")


def _auth_failed(error: FcmError) -> Outcome:
    return AuthFailed(f"{error.error_code or error.status or error.http_status}: {error.message}")


FCM_ERRORS: dict[str | int, Callable[[FcmError], Outcome]] = {
    # FcmError.errorCode, looked up first.
    "UNREGISTERED": _invalid_token,
    "INVALID_ARGUMENT": _invalid_argument,
    "SENDER_ID_MISMATCH": _invalid_token,
    "QUOTA_EXCEEDED": _quota,
    "UNAVAILABLE": _retry,
    "INTERNAL": _retry,
    "THIRD_PARTY_AUTH_ERROR": _auth_failed,
    "APNS_AUTH_ERROR": _auth_failed,
    "UNSPECIFIED_ERROR": _rejected,
    # Canonical google.rpc status, when there is no FcmError detail.
    "NOT_FOUND": _auth_failed,  # wrong project id: no token is at fault
    "PERMISSION_DENIED": _auth_failed,  # API disabled or IAM missing
    "UNAUTHENTICATED": _retry,  # refused access token; `send` refreshes it
    "RESOURCE_EXHAUSTED": _quota,
    # HTTP status, last.
    400: _rejected,
    401: _retry,
    403: _auth_failed,
    404: _auth_failed,
    413: _rejected,
    429: _quota,
    500: _retry,
    502: _retry,
    503: _retry,
    504: _retry,
}


class FcmProvider(BearerTokenProvider):
    """Sends to FCM registration tokens for one Firebase project."""

    platform = Platform.FCM

    def __init__(
        self,
        transport: Transport,
        credentials: FcmCredentials,
        *,
        clock: Clock,
        tokens: TokenSource | None = None,
    ) -> None:
        super().__init__(
            transport,
            tokens
            or ServiceAccountTokenSource(
                transport, service_account=credentials.service_account, scope=FCM_SCOPE, clock=clock
            ),
        )
        self.credentials = credentials
        self.clock = clock

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        native = deep_merge(fcm_message(message, self.clock.now()), message.overrides)
        native = _stringify_data_maps(native)
        check_size(native)
        native["token"] = recipient.token
        body = json.dumps({"message": native}, ensure_ascii=False, separators=(",", ":"))
        return HttpRequest(
            "POST",
            self.credentials.send_url,
            headers=(
                ("content-type", "application/json; charset=UTF-8"),
                ("x-goog-api-format-version", "2"),
            ),
            body=body.encode(),
        )

    def token_refused(self, response: HttpResponse) -> bool:
        return response.status == 401 and parse_error(response, self.clock.now()).error_code is None

    def classify(self, response: HttpResponse) -> Outcome:
        if response.status == 200:
            try:
                name = json.loads(response.body).get("name")
            except (ValueError, AttributeError):
                name = None
            return Sent(name if isinstance(name, str) else None)
        error = parse_error(response, self.clock.now())
        for key in (error.error_code, error.status, error.http_status):
            if key is not None and key in FCM_ERRORS:
                return FCM_ERRORS[key](error)
        if error.http_status >= 500:
            return _retry(error)
        return _rejected(error)


def fcm_message(message: Message, now: datetime) -> dict[str, Any]:
    """The HTTP v1 `Message` for the common content, without its target."""
    content = message.content
    high = message.priority is Priority.HIGH
    ttl = _ttl_seconds(message, now)
    native: dict[str, Any] = {}
    notification = _compact({"title": content.title, "body": content.body, "image": content.image})
    if notification:
        native["notification"] = notification
    data = dict(content.data)
    if content.url and "url" not in data:
        data["url"] = content.url
    if data:
        native["data"] = data
    android: dict[str, Any] = {"priority": "HIGH" if high else "NORMAL"}
    if ttl is not None:
        android["ttl"] = f"{ttl}s"
    if message.collapse_key:
        android["collapse_key"] = message.collapse_key
    android_notification = _compact({"sound": content.sound, "tag": message.collapse_key})
    if android_notification and not content.is_silent:
        android["notification"] = android_notification
    native["android"] = android
    native["apns"] = _apns(message, content)
    native["webpush"] = _webpush(message, ttl)
    return native


def _apns(message: Message, content: Content) -> dict[str, Any]:
    silent = content.is_silent
    headers = {
        "apns-priority": "10" if message.priority is Priority.HIGH and not silent else "5",
        "apns-push-type": "background" if silent else "alert",
    }
    if message.collapse_key:
        headers["apns-collapse-id"] = message.collapse_key[:64]
    if message.expires_at is not None:
        headers["apns-expiration"] = str(int(message.expires_at.timestamp()))
    aps: dict[str, Any] = _compact({"badge": content.badge, "sound": content.sound})
    if content.subtitle:
        aps["alert"] = {"subtitle": content.subtitle}
    if silent:
        aps["content-available"] = 1
    elif content.image:
        aps["mutable-content"] = 1
    return {"headers": headers, "payload": {"aps": aps}}


def _webpush(message: Message, ttl: int | None) -> dict[str, Any]:
    headers = {"Urgency": "high" if message.priority is Priority.HIGH else "normal"}
    if ttl is not None:
        headers["TTL"] = str(ttl)
    key = message.collapse_key
    if key and len(key) <= 32 and all(c.isalnum() or c in "-_" for c in key):
        headers["Topic"] = key
    webpush: dict[str, Any] = {"headers": headers}
    if message.content.url and message.content.url.startswith("https://"):
        webpush["fcm_options"] = {"link": message.content.url}
    return webpush


def _ttl_seconds(message: Message, now: datetime) -> int | None:
    remaining = message.seconds_left(now)
    return None if remaining is None else max(0, min(remaining, MAX_TTL))


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def stringify(value: Any) -> str:
    """An FCM data value: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _stringify_data_maps(native: dict[str, Any]) -> dict[str, Any]:
    for holder in (native, native.get("android"), native.get("webpush")):
        if isinstance(holder, dict) and isinstance(holder.get("data"), Mapping):
            holder["data"] = {str(k): stringify(v) for k, v in holder["data"].items()}
    return native


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` merged into a copy of `base`: objects merge, `None` removes, the rest replaces."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def check_size(native: Mapping[str, Any]) -> None:
    """Raise `PayloadTooLarge` when the message (target excluded) is over 4096 bytes."""
    size = payload_size(native)
    if size > MAX_PAYLOAD:
        raise PayloadTooLarge(size, MAX_PAYLOAD)


def payload_size(native: Mapping[str, Any]) -> int:
    """The size FCM counts: the compact JSON of the message without token/topic/condition."""
    counted = {k: v for k, v in native.items() if k not in ("token", "topic", "condition")}
    return len(json.dumps(counted, ensure_ascii=False, separators=(",", ":")).encode())


def parse_error(response: HttpResponse, now: datetime) -> FcmError:
    """The error code, canonical status and field violations of an FCM error answer."""
    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
    try:
        error = json.loads(response.body)["error"]
        details = error.get("details") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return FcmError(response.status, None, None, f"HTTP {response.status}", (), retry_after)
    code = None
    fields: list[str] = []
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == FCM_ERROR_TYPE:
            code = detail.get("errorCode")
        elif detail.get("@type") == BAD_REQUEST_TYPE:
            violations = detail.get("fieldViolations") or []
            fields += [str(v.get("field")) for v in violations if isinstance(v, dict)]
    return FcmError(
        http_status=response.status,
        error_code=code if isinstance(code, str) else None,
        status=error.get("status") if isinstance(error.get("status"), str) else None,
        message=str(error.get("message", "")),
        fields=tuple(fields),
        retry_after=retry_after,
    )
