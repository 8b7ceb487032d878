"""A local stand-in for Huawei Push Kit: OAuth token endpoint plus `messages:send`.

Like the real service it answers almost everything with HTTP 200 and a
Huawei `code` (PROTOCOLS.md §6): `80000000` success, `80100000` partial
success with `illegal_tokens`, `80300007` when every token is invalid,
`80300008` over 4096 bytes, `80100003` for a malformed message (`data` not a
string, a notification without `click_action`), `80100004` for a bad `ttl`,
and 401 with `80200001` / `80200003` when the access token is missing or no
longer valid.

    async with HmsEmulator(clock=clock) as emu:
        emu.add_app("10086", "app-secret")
        emu.unregister("stale-token")
        emu.state.faults.set(token, Fault(status=200, body=hms_error_body("81000001")))
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.clock import Clock
from clarion.emulators.base import Emulator
from clarion.emulators.oauth import OAuthIssuer
from clarion.emulators.recording import EmulatorState, Fault, RecordedRequest, inspection_routes
from clarion.emulators.server import EmulatorServer

TOKEN_PATH = "/oauth2/v3/token"  # noqa: S105 - a path
MAX_PAYLOAD = 4096
MAX_TOKENS = 1000
TTL_FORMAT = re.compile(r"^\d+(\.\d{1,9})?s$")
TOKEN_FORMAT = re.compile(r"^[A-Za-z0-9_\-:.]{8,512}$")
MESSAGES = {
    "80000000": "Success",
    "80100000": "Some tokens are right, the others are illegal",
    "80100001": "Some request parameters are incorrect",
    "80100003": "Incorrect message structure",
    "80100004": "The message expiration time is incorrect",
    "80200001": "Oauth authentication error",
    "80200003": "Oauth Token expired",
    "80300002": "The current app does not have the permission to send messages to the devices",
    "80300007": "All the tokens are invalid",
    "80300008": "The message body size exceeds the default value",
    "80300010": "The number of tokens in the message body exceeds the default value",
    "81000001": "System inner error",
}


def hms_error_body(code: str, msg: str | None = None) -> dict[str, Any]:
    """A Push Kit answer body with this code."""
    return {"code": code, "msg": msg or MESSAGES.get(code, "Error"), "requestId": _request_id()}


def _request_id() -> str:
    return secrets.token_hex(12)


class HmsReject(Exception):
    """A failure, answered with a Huawei code (HTTP 200 unless said otherwise)."""

    def __init__(self, code: str, msg: str | None = None, http_status: int = 200) -> None:
        super().__init__(msg or MESSAGES.get(code, code))
        self.code = code
        self.msg = msg
        self.http_status = http_status


class HmsBackend:
    """The emulator's state and request handling, separate from serving it."""

    def __init__(self, issuer: OAuthIssuer, state: EmulatorState) -> None:
        self.issuer = issuer
        self.state = state
        self.unregistered: set[str] = set()

    def app(self) -> Starlette:
        routes = [
            self.issuer.route(TOKEN_PATH),
            Route("/v1/{app_id}/messages:send", self.send, methods=["POST"]),
            *inspection_routes(self.state),
        ]
        return Starlette(routes=routes)

    async def send(self, request: Request) -> Response:
        body = await request.body()
        tokens: list[str] = []
        try:
            message = _message(body)
            tokens = _tokens(message)
            fault = self.state.faults.take(tokens[0] if tokens else None)
            if fault is not None:
                return await self._fault(request, body, tokens, fault)
            self._authorize(request.headers.get("authorization"), request.path_params["app_id"])
            _validate(message)
            answer = self._deliver(tokens)
        except HmsReject as exc:
            await self._record(request, body, tokens, exc.http_status)
            return JSONResponse(hms_error_body(exc.code, exc.msg), status_code=exc.http_status)
        await self._record(request, body, tokens, 200)
        return JSONResponse(answer)

    def _authorize(self, authorization: str | None, app_id: str) -> None:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise HmsReject("80200001", http_status=401)
        subject = self.issuer.subject(authorization)
        if subject is None:
            raise HmsReject("80200003", http_status=401)
        if subject != app_id:
            raise HmsReject("80300002")

    def _deliver(self, tokens: list[str]) -> dict[str, Any]:
        illegal = [t for t in tokens if t in self.unregistered or not TOKEN_FORMAT.match(t)]
        if tokens and len(illegal) == len(tokens):
            raise HmsReject("80300007")
        if illegal:
            detail = {
                "success": len(tokens) - len(illegal),
                "failure": len(illegal),
                "illegal_tokens": illegal,
            }
            return hms_error_body("80100000", json.dumps(detail))
        return hms_error_body("80000000")

    async def _fault(
        self, request: Request, body: bytes, tokens: list[str], fault: Fault
    ) -> Response:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        payload = fault.body if fault.body is not None else hms_error_body("81000001")
        await self._record(request, body, tokens, fault.status)
        return JSONResponse(payload, status_code=fault.status, headers=dict(fault.headers))

    async def _record(self, request: Request, body: bytes, tokens: list[str], status: int) -> None:
        await self.state.record(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                token=tokens[0] if tokens else None,
                status=status,
                http_version=str(request.scope.get("http_version", "1.1")),
            )
        )


def _message(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise HmsReject("80100003", f"Incorrect message structure: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("message"), dict):
        raise HmsReject("80100003", "Incorrect message structure: message is required")
    message: dict[str, Any] = payload["message"]
    return message


def _tokens(message: Mapping[str, Any]) -> list[str]:
    targets = [k for k in ("token", "topic", "condition") if k in message]
    if len(targets) != 1:
        raise HmsReject("80100001", "exactly one of token, topic or condition is required")
    if "token" not in message:
        return []
    tokens = message["token"]
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise HmsReject("80100001", "token must be a non-empty array of strings")
    if len(tokens) > MAX_TOKENS:
        raise HmsReject("80300010")
    return tokens


def _validate(message: Mapping[str, Any]) -> None:
    if "data" in message and not isinstance(message["data"], str):
        raise HmsReject("80100003", "Incorrect message structure: data must be a string")
    android = message.get("android") or {}
    if not isinstance(android, Mapping):
        raise HmsReject("80100003", "Incorrect message structure: android")
    if android.get("urgency", "NORMAL") not in ("HIGH", "NORMAL"):
        raise HmsReject("80100001", "android.urgency must be HIGH or NORMAL")
    ttl = android.get("ttl")
    if ttl is not None and not (isinstance(ttl, str) and TTL_FORMAT.match(ttl)):
        raise HmsReject("80100004")
    collapse_key = android.get("collapse_key")
    if collapse_key is not None and not (
        isinstance(collapse_key, int) and -1 <= collapse_key <= 100
    ):
        raise HmsReject("80100001", "android.collapse_key must be an integer from -1 to 100")
    notification = android.get("notification")
    if notification is not None:
        click = notification.get("click_action") if isinstance(notification, Mapping) else None
        if not isinstance(click, Mapping) or click.get("type") not in (1, 2, 3, 4):
            raise HmsReject("80100003", "Incorrect message structure: click_action")
    counted = {k: v for k, v in message.items() if k not in ("token", "topic", "condition")}
    body = {"validate_only": False, "message": counted}
    if len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()) > MAX_PAYLOAD:
        raise HmsReject("80300008")


class HmsEmulator(Emulator):
    """`async with HmsEmulator() as emu:` serves the fake on a loopback port."""

    def __init__(
        self, *, clock: Clock | None = None, tls: bool = False, token_lifetime: int = 3600
    ) -> None:
        self.state = EmulatorState()
        self.issuer = OAuthIssuer(clock=clock, lifetime=token_lifetime)
        self.backend = HmsBackend(self.issuer, self.state)
        self.server = EmulatorServer(self.backend.app(), tls=tls)

    @property
    def token_url(self) -> str:
        return self.server.url + TOKEN_PATH

    def add_app(self, app_id: str, client_secret: str) -> None:
        """Accept this AppID/AppSecret at the token endpoint."""
        self.issuer.add_client(app_id, client_secret)

    def unregister(self, token: str) -> None:
        """Make `token` count as invalid from now on (app uninstalled)."""
        self.backend.unregistered.add(token)
