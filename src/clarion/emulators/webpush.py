"""A local Web Push service (RFC 8030) that also plays the browser.

It mints subscriptions whose endpoints point at itself, keeping each one's
P-256 private key and auth secret, so it can decrypt what it receives
(`RecordedRequest.decrypted`) the way the browser would. Requests are checked
in the order a real push service checks them, with Mozilla autopush's status
codes and errno JSON bodies:

1. the subscription: unknown or expired 404, unsubscribed 410;
2. `TTL` present and a non-negative integer (400, errno 111/112); larger
   values are lowered to 30 days and the kept value echoed;
3. `Urgency` one of `very-low|low|normal|high`, `Topic` at most 32
   base64url characters (400, errno 113);
4. `Content-Encoding: aes128gcm` (400, errno 110);
5. body at most 4096 bytes (413, errno 104);
6. VAPID (RFC 8292): `vapid t=..., k=...` present and well formed (401,
   errno 109), the ES256 JWT verifies with `k`, `aud` is this service's
   origin, `exp` is in the future and at most 24 h ahead, `sub` is present,
   and `k` is the key a restricted subscription was made with (403, errno 109);
7. the body decrypts with the subscription's keys. A real service cannot
   check this; the emulator answers 400 (errno 110) so a broken sender fails
   loudly instead of a browser silently dropping the push.

Accepted pushes get 201 with `Location` and `TTL`. Endpoints are either
`/wpush/<token>` (browser style) or `/UP?token=<token>` (a UnifiedPush
distributor's style). Faults from `state.faults`, keyed by subscription
token, replace the answer (status, body, headers such as `Retry-After`,
delay) before any check.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.clock import Clock, SystemClock
from clarion.emulators.base import Emulator
from clarion.emulators.recording import EmulatorState, RecordedRequest, inspection_routes
from clarion.emulators.server import EmulatorServer
from clarion.model.message import WebPushSubscription
from clarion.providers.vapid import VapidError, origin_of, parse_authorization, verify
from clarion.providers.webpush_crypto import (
    MAX_BODY,
    DecryptionError,
    b64url_encode,
    decrypt,
    public_point,
)

MAX_TTL = 30 * 24 * 3600
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
_REASONS |= {410: "Gone", 413: "Payload Too Large"}


@dataclass(slots=True)
class Subscriber:
    """What the emulated browser holds for one subscription."""

    token: str
    subscription: WebPushSubscription
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str | None
    status: int = 201
    """201 while active; 404 once expired, 410 once unsubscribed."""


class Refusal(Exception):
    """A push the service refuses, with autopush's errno."""

    def __init__(self, status: int, errno: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.errno = errno
        self.message = message

    def response(self) -> Response:
        body = {
            "code": self.status,
            "errno": self.errno,
            "error": _REASONS.get(self.status, "Error"),
            "message": self.message,
        }
        return JSONResponse(body, status_code=self.status)


def _check_headers(request: Request) -> int:
    """Steps 2-4; the TTL the service keeps."""
    ttl = request.headers.get("ttl")
    if ttl is None:
        raise Refusal(400, 111, "Missing TTL header")
    if not ttl.strip().isdigit():
        raise Refusal(400, 112, f"Invalid TTL header {ttl!r}")
    urgencies = request.headers.getlist("urgency")
    if len(urgencies) > 1 or (urgencies and urgencies[0].strip() not in URGENCIES):
        raise Refusal(400, 110, f"Invalid Urgency header {urgencies!r}")
    topic = request.headers.get("topic")
    if topic is not None and not (0 < len(topic) <= 32 and set(topic) <= _BASE64URL):
        raise Refusal(400, 113, "Topic must be at most 32 base64url characters")
    encoding = request.headers.get("content-encoding", "")
    if encoding.strip().lower() != "aes128gcm":
        raise Refusal(400, 110, f"Content-Encoding must be aes128gcm, not {encoding!r}")
    return min(int(ttl), MAX_TTL)


def _check_vapid(request: Request, subscriber: Subscriber, clock: Clock) -> None:
    """Step 6."""
    try:
        token, key = parse_authorization(request.headers.get("authorization"))
        verify(token, key, audience=origin_of(str(request.url)), now=clock.now())
    except VapidError as exc:
        raise Refusal(exc.status, 109, f"VAPID: {exc}") from exc
    restricted = subscriber.application_server_key
    if restricted is not None and key.rstrip("=") != restricted.rstrip("="):
        raise Refusal(403, 109, "VAPID key does not match the subscription's key")


class WebPushEmulator(Emulator):
    """A push service on `https://127.0.0.1:<port>`; `async with WebPushEmulator() as emu`.

    Share the test's `FakeClock` as `clock` when the sender uses one, since
    VAPID expiry is checked against it.
    """

    def __init__(self, *, clock: Clock | None = None, tls: bool = True) -> None:
        self.clock: Clock = clock or SystemClock()
        self.state = EmulatorState()
        self.subscribers: dict[str, Subscriber] = {}
        self.app = create_webpush_app(self)
        self.server = EmulatorServer(self.app, tls=tls)

    def subscribe(
        self, *, application_server_key: str | None = None, unifiedpush: bool = False
    ) -> WebPushSubscription:
        """A new subscription on this service, as `PushSubscription.toJSON()` gives it.

        With `application_server_key` the subscription is restricted to that
        VAPID key. `unifiedpush` gives a `/UP?token=...` endpoint.
        """
        token = secrets.token_urlsafe(24)
        path = f"/UP?token={token}" if unifiedpush else f"/wpush/{token}"
        private_key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        subscription = WebPushSubscription(
            endpoint=self.url + path,
            p256dh=b64url_encode(public_point(private_key.public_key())),
            auth=b64url_encode(auth),
        )
        self.subscribers[token] = Subscriber(
            token, subscription, private_key, auth, application_server_key
        )
        return subscription

    def expire(self, subscription: WebPushSubscription) -> None:
        """Pushes to it now get 404, as for an expired subscription."""
        self._subscriber(subscription).status = 404

    def unsubscribe(self, subscription: WebPushSubscription) -> None:
        """Pushes to it now get 410, as after the user unsubscribed."""
        self._subscriber(subscription).status = 410

    def received(self, subscription: WebPushSubscription) -> list[bytes]:
        """The decrypted payloads of the pushes accepted for this subscription."""
        token = self._subscriber(subscription).token
        return [
            r.decrypted
            for r in self.state.requests
            if r.token == token and r.status == 201 and r.decrypted is not None
        ]

    def _subscriber(self, subscription: WebPushSubscription) -> Subscriber:
        for subscriber in self.subscribers.values():
            if subscriber.subscription.endpoint == subscription.endpoint:
                return subscriber
        raise KeyError(subscription.endpoint)

    async def handle(self, request: Request) -> Response:
        """One push: faults first, then the checks listed in the module docstring."""
        token = request.path_params.get("token") or request.query_params.get("token")
        body = await request.body()
        fault = self.state.faults.take(token)
        decrypted: bytes | None = None
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            response: Response = JSONResponse(
                fault.body, status_code=fault.status, headers=dict(fault.headers)
            )
        else:
            try:
                response, decrypted = self._accept(request, token, body)
            except Refusal as refusal:
                response = refusal.response()
        await self.state.record(
            RecordedRequest(
                method=request.method,
                path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                token=token,
                status=response.status_code,
                http_version=str(request.scope.get("http_version", "1.1")),
                decrypted=decrypted,
            )
        )
        return response

    def _accept(self, request: Request, token: str | None, body: bytes) -> tuple[Response, bytes]:
        subscriber = self.subscribers.get(token or "")
        if subscriber is None:
            raise Refusal(404, 102, "Invalid endpoint")
        if subscriber.status == 404:
            raise Refusal(404, 103, "Subscription expired")
        if subscriber.status == 410:
            raise Refusal(410, 106, "Subscription is no longer valid")
        ttl = _check_headers(request)
        if len(body) > MAX_BODY:
            raise Refusal(413, 104, f"Body of {len(body)} bytes exceeds {MAX_BODY}")
        _check_vapid(request, subscriber, self.clock)
        try:
            plaintext = decrypt(body, subscriber.private_key, subscriber.auth_secret)
        except DecryptionError as exc:
            raise Refusal(400, 110, f"Undecryptable body: {exc}") from exc
        location = f"{origin_of(str(request.url))}/m/{uuid.uuid4().hex}"
        return Response(status_code=201, headers={"location": location, "ttl": str(ttl)}), plaintext

    async def mint(self, request: Request) -> Response:
        """`POST /_emulator/subscriptions` for clients outside the test process (the demo)."""
        options: dict[str, Any] = await request.json() if await request.body() else {}
        subscription = self.subscribe(
            application_server_key=options.get("application_server_key"),
            unifiedpush=bool(options.get("unifiedpush", False)),
        )
        keys = {"p256dh": subscription.p256dh, "auth": subscription.auth}
        return JSONResponse({"endpoint": subscription.endpoint, "keys": keys}, status_code=201)


def create_webpush_app(emulator: WebPushEmulator) -> Starlette:
    """The push service's routes plus the shared `/_emulator/...` inspection routes."""
    return Starlette(
        routes=[
            Route("/wpush/{token}", emulator.handle, methods=["POST"]),
            Route("/UP", emulator.handle, methods=["POST"]),
            Route("/_emulator/subscriptions", emulator.mint, methods=["POST"]),
            *inspection_routes(emulator.state),
        ]
    )
