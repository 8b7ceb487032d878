"""How the APNs emulator judges a request: headers, provider JWTs, payload.

Each check raises `Refusal(status, reason)` with Apple's own status and reason
string (PROTOCOLS.md §1.5). The JWT rules are the ones Apple enforces per
HTTP/2 connection: the first valid token binds the connection to its team
(another team's token is `UnrelatedKeyIdInToken`), and a token never seen on
the connection replaces the current one only if that one is at least 20
minutes old (`TooManyProviderTokenUpdates`). Tokens already seen stay valid,
so requests signed before a refresh but arriving after it are not punished.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

TOKEN_MAX_AGE = 3600
TOKEN_UPDATE_INTERVAL = 20 * 60
PAYLOAD_LIMIT = 4096
VOIP_PAYLOAD_LIMIT = 5120
MAX_COLLAPSE_ID_BYTES = 64

PUSH_TYPE_SUFFIXES: Mapping[str, str | None] = {
    "alert": "",
    "background": "",
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "liveactivity": ".push-type.liveactivity",
    "location": ".location-query",
    "pushtotalk": ".voip-ptt",
    "widgets": ".push-type.widgets",
    "controls": ".push-type.controls",
    "mdm": None,
}
"""Every `apns-push-type` and the suffix its topic must carry (None: any known topic)."""

CHECKED_HEADERS = (
    "authorization",
    "apns-id",
    "apns-expiration",
    "apns-priority",
    "apns-topic",
    "apns-collapse-id",
    "apns-push-type",
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{64,200}")


class Refusal(Exception):
    """An APNs error answer: status and `{"reason": ...}` (410 adds `timestamp`)."""

    def __init__(self, status: int, reason: str, timestamp: int | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.timestamp = timestamp

    def answer(self, apns_id: str) -> Answer:
        body: dict[str, Any] = {"reason": self.reason}
        if self.timestamp is not None:
            body["timestamp"] = self.timestamp
        headers = {"apns-id": apns_id, "content-type": "application/json"}
        return Answer(self.status, headers, json.dumps(body, separators=(",", ":")).encode())


@dataclass(frozen=True, slots=True)
class Answer:
    """The emulator's reply, independent of the server that carries it."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A `.p8` key the emulator accepts: its team, Key ID and public half (PEM)."""

    team_id: str
    key_id: str
    public_key: str


@dataclass(slots=True)
class ConnectionTokens:
    """What one HTTP/2 connection has shown us of provider tokens."""

    team_id: str
    current: str
    changed_at: float
    seen: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    team_id: str
    key_id: str
    issued_at: int


class JwtJudge:
    """Verifies provider tokens against the accepted keys, per connection."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self._keys: dict[str, tuple[SigningKey, ec.EllipticCurvePublicKey]] = {}
        self._verified: dict[str, TokenClaims] = {}
        self._connections: dict[Any, ConnectionTokens] = {}
        for key in keys:
            self.add(key)

    def add(self, key: SigningKey) -> None:
        public = load_pem_public_key(key.public_key.encode())
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ValueError("an APNs signing key is an EC P-256 key")
        self._keys[key.key_id] = (key, public)

    def check(self, authorization: str | None, connection: Any, now: float) -> TokenClaims:
        """The token's claims, or a `Refusal` as APNs would answer."""
        if not authorization:
            raise Refusal(403, "MissingProviderToken")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Refusal(403, "InvalidProviderToken")
        claims = self._verified.get(token) or self._verify(token)
        if now - claims.issued_at > TOKEN_MAX_AGE:
            raise Refusal(403, "ExpiredProviderToken")
        self._track(token, claims, connection, now)
        return claims

    def _verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Refusal(403, "InvalidProviderToken") from exc
        entry = self._keys.get(str(header.get("kid")))
        if header.get("alg") != "ES256" or entry is None:
            raise Refusal(403, "InvalidProviderToken")
        key, public = entry
        try:
            payload = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                options={
                    "require": ["iss", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise Refusal(403, "InvalidProviderToken") from exc
        issued_at = payload.get("iat")
        if payload.get("iss") != key.team_id or not isinstance(issued_at, int):
            raise Refusal(403, "InvalidProviderToken")
        claims = TokenClaims(key.team_id, key.key_id, issued_at)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _track(self, token: str, claims: TokenClaims, connection: Any, now: float) -> None:
        state = self._connections.get(connection)
        if state is None:
            self._connections[connection] = ConnectionTokens(claims.team_id, token, now, {token})
            return
        if token in state.seen:
            return
        if claims.team_id != state.team_id:
            raise Refusal(403, "UnrelatedKeyIdInToken")
        if now - state.changed_at < TOKEN_UPDATE_INTERVAL:
            raise Refusal(429, "TooManyProviderTokenUpdates")
        state.current, state.changed_at = token, now
        state.seen.add(token)


def check_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The APNs headers by lower-case name; `DuplicateHeaders` when one repeats."""
    found: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name in CHECKED_HEADERS:
            if name in found:
                raise Refusal(400, "DuplicateHeaders")
            found[name] = raw_value.decode("latin-1")
    return found


def check_topic(headers: Mapping[str, str], topics: frozenset[str], default: str | None) -> str:
    """The push type, after checking it against `apns-topic`."""
    push_type = headers.get("apns-push-type", "alert")
    if push_type not in PUSH_TYPE_SUFFIXES:
        raise Refusal(400, "InvalidPushType")
    topic = headers.get("apns-topic", default)
    if not topic:
        raise Refusal(400, "MissingTopic")
    if topic.strip() != topic or " " in topic:
        raise Refusal(400, "BadTopic")
    suffix = PUSH_TYPE_SUFFIXES[push_type]
    if suffix is None:
        if topic not in topics:
            raise Refusal(400, "TopicDisallowed")
        return push_type
    if not topic.endswith(suffix):
        raise Refusal(400, "BadTopic")
    if topic.removesuffix(suffix) not in topics:
        wrong_suffix = _has_known_suffix(topic, topics)
        raise Refusal(400, "BadTopic" if wrong_suffix else "TopicDisallowed")
    return push_type


def _has_known_suffix(topic: str, topics: frozenset[str]) -> bool:
    return any(
        suffix and topic.endswith(suffix) and topic.removesuffix(suffix) in topics
        for suffix in PUSH_TYPE_SUFFIXES.values()
    )


def check_options(headers: Mapping[str, str], push_type: str) -> None:
    """Priority, expiration, collapse id and apns-id formats."""
    priority = headers.get("apns-priority", "10")
    if priority not in ("1", "5", "10"):
        raise Refusal(400, "BadPriority")
    if push_type == "background" and priority == "10":
        raise Refusal(400, "BadPriority")
    expiration = headers.get("apns-expiration")
    if expiration is not None and not expiration.isdigit():
        raise Refusal(400, "BadExpirationDate")
    collapse_id = headers.get("apns-collapse-id")
    if collapse_id is not None and len(collapse_id.encode()) > MAX_COLLAPSE_ID_BYTES:
        raise Refusal(400, "BadCollapseId")
    apns_id = headers.get("apns-id")
    if apns_id is not None and not _UUID.fullmatch(apns_id):
        raise Refusal(400, "BadMessageId")


def check_device_token(token: str) -> None:
    if not token:
        raise Refusal(400, "MissingDeviceToken")
    if not _DEVICE_TOKEN.fullmatch(token):
        raise Refusal(400, "BadDeviceToken")


def check_payload(body: bytes, push_type: str) -> dict[str, Any]:
    """The parsed payload; empty, oversized, unparseable or `aps`-less bodies are refused.

    APNs does not document the reason for a body that is not JSON or lacks
    `aps`; the emulator says `BadPayload`.
    """
    if not body:
        raise Refusal(400, "PayloadEmpty")
    limit = VOIP_PAYLOAD_LIMIT if push_type == "voip" else PAYLOAD_LIMIT
    if len(body) > limit:
        raise Refusal(413, "PayloadTooLarge")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise Refusal(400, "BadPayload") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
        raise Refusal(400, "BadPayload")
    return payload
