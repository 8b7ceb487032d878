"""A local ADM: Login with Amazon's token endpoint plus the messaging API.

The send route checks what Amazon documents, in order: the bearer token (401
`AccessTokenExpired`), the `X-Amzn-Type-Version` / `X-Amzn-Accept-Type`
headers (400 `InvalidType`), the JSON content type and the 6 KB limit (413
`MessageTooLarge`), the body's shape (`data` a map of strings: `InvalidData`;
`consolidationKey`: `InvalidConsolidationKey`; `expiresAfter` 60..2678400:
`InvalidExpiration`), the `md5` when present (`InvalidChecksum`), and the
registration (`InvalidRegistrationId`, `Unregistered`). A registration that was
replaced answers 200 with its new ID, the canonical-ID update.

    async with AdmEmulator(clock=clock) as emu:
        reg = emu.register()                  # a fresh registration ID
        new = emu.replace(reg)                # sends to reg now answer {"registrationID": new}
        emu.unregister(new)                   # 400 Unregistered
        emu.state.faults.set(reg, Fault(429, {"reason": "MaxRateExceeded"}, {"retry-after": "5"}))
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.clock import Clock, SystemClock
from clarion.emulators.base import Emulator
from clarion.emulators.oauth import OAuthIssuer
from clarion.emulators.recording import (
    EmulatorState,
    RecordedRequest,
    inspection_routes,
)
from clarion.emulators.server import EmulatorServer

DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.emulator"
DEFAULT_CLIENT_SECRET = "adm-emulator-secret"  # noqa: S105 - the emulator's test secret
TOKEN_PATH = "/auth/o2/token"  # noqa: S105 - a path
SEND_PATH = "/messaging/registrations/{registration_id}/messages"
TYPE_VERSION = "com.amazon.device.messaging.ADMMessage@1.0"
ACCEPT_TYPE = "com.amazon.device.messaging.ADMSendResult@1.0"
MAX_PAYLOAD = 6 * 1024
EXPIRES_AFTER = range(60, 2678400 + 1)
FIELDS = frozenset({"data", "notification", "consolidationKey", "expiresAfter", "md5"})


@dataclass(slots=True)
class Registration:
    """One app instance: live, unregistered, or replaced by a newer ID."""

    unregistered: bool = False
    replaced_by: str | None = None


class AdmRejection(Exception):
    """An ADM error answer: status and `reason`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class AdmEmulator(Emulator):
    """The ADM token endpoint and messaging API on a loopback server.

    `accept_unknown_registrations` treats any ID as live (for the demo).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        tls: bool = True,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_lifetime: int = 3600,
        accept_unknown_registrations: bool = False,
    ) -> None:
        self.clock = clock or SystemClock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.accept_unknown_registrations = accept_unknown_registrations
        self.issuer = OAuthIssuer(
            clock=self.clock, lifetime=token_lifetime, scopes=frozenset({"messaging:push"})
        )
        self.issuer.add_client(client_id, client_secret)
        self.state = EmulatorState()
        self.registrations: dict[str, Registration] = {}
        self.app = create_adm_app(self)
        self.server = EmulatorServer(self.app, tls=tls)

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    def register(self, registration_id: str | None = None) -> str:
        """A live registration ID (a new random one unless given)."""
        registration_id = registration_id or _new_id()
        self.registrations[registration_id] = Registration()
        return registration_id

    def unregister(self, registration_id: str) -> None:
        """The app was uninstalled: sends now get 400 `Unregistered`."""
        self.registrations[registration_id].unregistered = True

    def replace(self, registration_id: str) -> str:
        """ADM issued a newer ID; sends to the old one answer with it."""
        new_id = self.register()
        self.registrations[registration_id].replaced_by = new_id
        return new_id

    def lookup(self, registration_id: str) -> Registration | None:
        registration = self.registrations.get(registration_id)
        if registration is None and self.accept_unknown_registrations:
            registration = self.registrations[registration_id] = Registration()
        return registration


def create_adm_app(emulator: AdmEmulator) -> Starlette:
    """The emulator's ASGI app: token endpoint, send route, inspection routes."""

    async def send(request: Request) -> Response:
        registration_id = request.path_params["registration_id"]
        body = await request.body()
        fault = emulator.state.faults.take(registration_id)
        status: int
        answer: Any
        headers = {"x-amzn-requestid": secrets.token_hex(16)}
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            status, answer = fault.status, fault.body
            headers.update(fault.headers)
        else:
            try:
                status, answer = 200, {"registrationID": check_send(emulator, request, body)}
            except AdmRejection as exc:
                status, answer = exc.status, {"reason": exc.reason}
        await emulator.state.record(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                token=registration_id,
                status=status,
                http_version=str(request.scope.get("http_version", "1.1")),
            )
        )
        if isinstance(answer, str | bytes):
            return Response(answer, status_code=status, headers=headers)
        return JSONResponse(answer, status_code=status, headers=headers)

    routes = [
        emulator.issuer.route(TOKEN_PATH),
        Route(SEND_PATH, send, methods=["POST"]),
        *inspection_routes(emulator.state),
    ]
    return Starlette(routes=routes)


def check_send(emulator: AdmEmulator, request: Request, body: bytes) -> str:
    """The registration ID to answer with; raises `AdmRejection` otherwise."""
    headers = request.headers
    if not emulator.issuer.check(headers.get("authorization")):
        raise AdmRejection(401, "AccessTokenExpired")
    if headers.get("x-amzn-type-version") != TYPE_VERSION:
        raise AdmRejection(400, "InvalidType")
    if headers.get("x-amzn-accept-type") != ACCEPT_TYPE:
        raise AdmRejection(400, "InvalidType")
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise AdmRejection(400, "InvalidData")
    if len(body) > MAX_PAYLOAD:
        raise AdmRejection(413, "MessageTooLarge")
    check_message(body)
    registration_id = str(request.path_params["registration_id"])
    registration = emulator.lookup(registration_id)
    if registration is None:
        raise AdmRejection(400, "InvalidRegistrationId")
    if registration.unregistered:
        raise AdmRejection(400, "Unregistered")
    return registration.replaced_by or registration_id


def check_message(body: bytes) -> None:
    """Validate an ADMMessage body as ADM would."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise AdmRejection(400, "InvalidData") from exc
    if not isinstance(message, dict) or not FIELDS.issuperset(message):
        raise AdmRejection(400, "InvalidData")
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise AdmRejection(400, "InvalidData")
    if "notification" in message and not isinstance(message["notification"], dict):
        raise AdmRejection(400, "InvalidData")
    key = message.get("consolidationKey")
    if key is not None and (not isinstance(key, str) or not key):
        raise AdmRejection(400, "InvalidConsolidationKey")
    expires = message.get("expiresAfter")
    if expires is not None and (
        not isinstance(expires, int) or isinstance(expires, bool) or expires not in EXPIRES_AFTER
    ):
        raise AdmRejection(400, "InvalidExpiration")
    md5 = message.get("md5")
    if md5 is not None and md5 != data_checksum(data):
        raise AdmRejection(400, "InvalidChecksum")


def data_checksum(data: dict[str, str]) -> str:
    """ADM's md5 of `data`, computed independently of the provider's code."""
    pairs = [f"{key}:{data[key]}" for key in sorted(data, key=lambda k: k.encode("utf-8"))]
    digest = hashlib.md5(",".join(pairs).encode("utf-8")).digest()  # noqa: S324
    return base64.b64encode(digest).decode("ascii")


def _new_id() -> str:
    return "amzn1.adm-registration.v3." + secrets.token_urlsafe(48)
