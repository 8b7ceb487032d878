"""Huawei Push Kit (HMS Core) for Android devices without Google services.

`POST {endpoint}/v1/{app_id}/messages:send` with
`{"validate_only": false, "message": {"token": [token], "android": {...}, "data": "..."}}`,
authorized by an OAuth client-credentials token (the AppID is the client id,
the AppSecret the secret). The API copies FCM's v1 shape with Huawei's twists:
`data` is one JSON *string*, `android.urgency` replaces `priority`,
`collapse_key` is a small integer, and a notification must say what a tap
does (`click_action`). The notification's `hms` object is deep-merged into the
message last.

Huawei answers most errors with HTTP 200 and a `code` in the body, so the
outcome comes from one table keyed by that code (`HMS_CODES`), falling back to
the HTTP status. `80200003` (token expired) and `80200001` (OAuth failure)
mean our access token was refused: it is dropped and the push sent once more
with a fresh one. A single-token partial success (`80100000`) is read from
its `msg`: success means sent, an `illegal_tokens` entry means the token is
gone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clarion.clock import Clock
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
from clarion.providers.fcm import deep_merge
from clarion.providers.oauth import (
    BearerTokenProvider,
    ClientCredentialsTokenSource,
    TokenSource,
    parse_retry_after,
)

HMS_TOKEN_URL = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"  # noqa: S105 - a URL
HMS_ENDPOINT = "https://push-api.cloud.huawei.com"
MAX_PAYLOAD = 4096
"""Bytes of the request body, not counting the tokens."""
MAX_TTL = 1_296_000
"""Huawei keeps a message for at most 15 days."""
SUCCESS = "80000000"
PARTIAL_SUCCESS = "80100000"
TOKEN_REFUSED = frozenset({"80200001", "80200003"})


@dataclass(frozen=True, slots=True)
class HmsCredentials:
    """An AppGallery Connect app's id and secret, and where to use them."""

    app_id: str
    client_secret: str = field(repr=False)
    token_url: str = HMS_TOKEN_URL
    endpoint: str = HMS_ENDPOINT

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HmsCredentials:
        """From the API body `{"app_id", "client_secret", "token_url"?, "endpoint"?}`."""
        values: dict[str, str] = {}
        for name in ("app_id", "client_secret", "token_url", "endpoint"):
            value = config.get(name)
            if value is None and name in ("token_url", "endpoint"):
                continue
            if not isinstance(value, str) or not value.strip():
                raise InvalidCredentials(f"field {name!r} is missing or not a string")
            values[name] = value.strip()
        return cls(**values)

    @property
    def send_url(self) -> str:
        return f"{self.endpoint.rstrip('/')}/v1/{self.app_id}/messages:send"


@dataclass(frozen=True, slots=True)
class HmsAnswer:
    """What decides the outcome: Huawei's code and message, and the HTTP facts."""

    http_status: int
    code: str | None
    msg: str
    request_id: str | None
    retry_after: float | None


def _sent(answer: HmsAnswer) -> Outcome:
    return Sent(answer.request_id)


def _partial(answer: HmsAnswer) -> Outcome:
    try:
        detail = json.loads(answer.msg)
        succeeded = int(detail.get("success", 0))
        illegal = list(detail.get("illegal_tokens") or [])
    except (ValueError, TypeError, AttributeError):
        return Retry(f"{answer.code}: unreadable partial success {answer.msg!r}")
    if succeeded > 0:
        return Sent(answer.request_id)
    if illegal:
        return InvalidToken(f"{answer.code}: illegal token")
    return Retry(f"{answer.code}: {answer.msg}", answer.retry_after)


def _invalid_token(answer: HmsAnswer) -> Outcome:
    return InvalidToken(f"{answer.code}: {answer.msg}")


def _rejected(answer: HmsAnswer) -> Outcome:
    return Rejected(f"{answer.code or answer.http_status}: {answer.msg}")


def _auth_failed(answer: HmsAnswer) -> Outcome:
    return AuthFailed(f"{answer.code or answer.http_status}: {answer.msg}")


def _retry(answer: HmsAnswer) -> Outcome:
    return Retry(f"{answer.code or answer.http_status}: {answer.msg}", answer.retry_after)


HMS_CODES: dict[str | int, Callable[[HmsAnswer], Outcome]] = {
    # Huawei's `code`, looked up first (it usually comes with HTTP 200).
    SUCCESS: _sent,
    PARTIAL_SUCCESS: _partial,
    "80100001": _rejected,  # parameter error
    "80100002": _rejected,  # too many tokens / bad token list
    "80100003": _rejected,  # bad message structure
    "80100004": _rejected,  # bad TTL
    "80200001": _retry,  # OAuth failure: `send` refreshes the token
    "80200003": _retry,  # OAuth token expired: `send` refreshes the token
    "80300002": _auth_failed,  # no permission for these tokens / region: configuration
    "80300007": _invalid_token,  # all tokens invalid
    "80300008": _rejected,  # body over 4096 bytes
    "80300010": _rejected,  # more than 1000 tokens
    "80300011": _rejected,  # no permission for high-priority notifications
    "81000001": _retry,  # internal error
    # HTTP status, when there is no code.
    400: _rejected,
    401: _retry,
    403: _auth_failed,
    404: _auth_failed,
    413: _rejected,
    429: _retry,
    500: _retry,
    502: _retry,
    503: _retry,
    504: _retry,
}


class HmsProvider(BearerTokenProvider):
    """Sends to Huawei push tokens of one AppGallery app."""

    platform = Platform.HMS

    def __init__(
        self,
        transport: Transport,
        credentials: HmsCredentials,
        *,
        clock: Clock,
        tokens: TokenSource | None = None,
    ) -> None:
        super().__init__(
            transport,
            tokens
            or ClientCredentialsTokenSource(
                transport,
                token_url=credentials.token_url,
                client_id=credentials.app_id,
                client_secret=credentials.client_secret,
                scope=None,
                clock=clock,
            ),
        )
        self.credentials = credentials
        self.clock = clock

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        native = deep_merge(hms_message(message, self.clock.now()), message.overrides)
        if isinstance(native.get("data"), Mapping):
            native["data"] = _json(native["data"])
        check_size(native)
        native["token"] = [recipient.token]
        body = _json({"validate_only": False, "message": native})
        return HttpRequest(
            "POST",
            self.credentials.send_url,
            headers=(("content-type", "application/json;charset=UTF-8"),),
            body=body.encode(),
        )

    def token_refused(self, response: HttpResponse) -> bool:
        code = parse_answer(response, self.clock.now()).code
        return code in TOKEN_REFUSED or (response.status == 401 and code is None)

    def classify(self, response: HttpResponse) -> Outcome:
        answer = parse_answer(response, self.clock.now())
        for key in (answer.code, answer.http_status):
            if key is not None and key in HMS_CODES:
                return HMS_CODES[key](answer)
        if answer.http_status >= 500:
            return _retry(answer)
        return _rejected(answer)


def hms_message(message: Message, now: datetime) -> dict[str, Any]:
    """The Push Kit `message` for the common content, without its target."""
    content = message.content
    native: dict[str, Any] = {}
    data = dict(content.data)
    if data:
        native["data"] = data
    android: dict[str, Any] = {"urgency": "HIGH" if message.priority is Priority.HIGH else "NORMAL"}
    ttl = _ttl_seconds(message, now)
    if ttl is not None:
        android["ttl"] = f"{ttl}s"
    key = message.collapse_key
    if key is not None and key.lstrip("-").isdigit() and -1 <= int(key) <= 100:
        android["collapse_key"] = int(key)
    if not content.is_silent:
        android["notification"] = _notification(message)
    native["android"] = android
    return native


def _notification(message: Message) -> dict[str, Any]:
    content = message.content
    notification: dict[str, Any] = {
        k: v
        for k, v in {"title": content.title, "body": content.body, "image": content.image}.items()
        if v is not None
    }
    if content.url:
        notification["click_action"] = {"type": 2, "url": content.url}
    else:
        notification["click_action"] = {"type": 3}  # open the app
    if content.sound == "default":
        notification["default_sound"] = True
    elif content.sound:
        notification["sound"] = content.sound
    if message.collapse_key:
        notification["tag"] = message.collapse_key
    return notification


def _ttl_seconds(message: Message, now: datetime) -> int | None:
    remaining = message.seconds_left(now)
    return None if remaining is None else max(0, min(remaining, MAX_TTL))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def payload_size(native: Mapping[str, Any]) -> int:
    """The size Huawei counts: the request body with the token list left empty."""
    counted = {k: v for k, v in native.items() if k not in ("token", "topic", "condition")}
    return len(_json({"validate_only": False, "message": counted}).encode())


def check_size(native: Mapping[str, Any]) -> None:
    """Raise `PayloadTooLarge` when the body without tokens is over 4096 bytes."""
    size = payload_size(native)
    if size > MAX_PAYLOAD:
        raise PayloadTooLarge(size, MAX_PAYLOAD)


def parse_answer(response: HttpResponse, now: datetime) -> HmsAnswer:
    """Huawei's code, message and request id, whatever the HTTP status."""
    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
    try:
        body = json.loads(response.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return HmsAnswer(response.status, None, f"HTTP {response.status}", None, retry_after)
    code = body.get("code")
    request_id = body.get("requestId")
    return HmsAnswer(
        http_status=response.status,
        code=str(code) if code is not None else None,
        msg=str(body.get("msg", "")),
        request_id=str(request_id) if request_id is not None else None,
        retry_after=retry_after,
    )
