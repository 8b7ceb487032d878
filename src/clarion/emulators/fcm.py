"""A local stand-in for FCM HTTP v1: token endpoint plus `messages:send`.

It checks what the real service checks (PROTOCOLS.md §2.6): a live bearer
token issued to a service account of the addressed project, exactly one
target, string-only `data` without reserved keys, the `ttl` duration format,
`android.priority`, and the 4096-byte size. It answers
`{"name": "projects/p/messages/0:..."}` or `google.rpc.Status` bodies with
the `FcmError` detail, so a client's error mapping is exercised for real.

    async with FcmEmulator(clock=clock) as emu:
        account = emu.service_account("demo-project")   # JSON with token_uri -> emu
        emu.unregister("stale-token")                    # next sends: 404 UNREGISTERED
        emu.state.faults.set(token, Fault(status=503, headers={"retry-after": "7"}))
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.clock import Clock
from clarion.emulators.base import Emulator
from clarion.emulators.oauth import OAuthIssuer
from clarion.emulators.recording import EmulatorState, Fault, RecordedRequest, inspection_routes
from clarion.emulators.server import EmulatorServer

FCM_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
MAX_PAYLOAD = 4096
TTL_FORMAT = re.compile(r"^\d+(\.\d{1,9})?s$")
MAX_TTL = 2_419_200
TOKEN_FORMAT = re.compile(r"^[A-Za-z0-9_\-:.]{8,4096}$")
RESERVED_KEYS = ("from", "message_type")
RESERVED_PREFIXES = ("google", "gcm")  # "any word starting with google or gcm"
CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
DEFAULT_CODES = {
    400: "INVALID_ARGUMENT",
    403: "SENDER_ID_MISMATCH",
    404: "UNREGISTERED",
    429: "QUOTA_EXCEEDED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
"""The FcmError code an injected fault of that status carries when it has no body."""


def fcm_error_body(
    http_status: int, error_code: str | None, message: str, field: str | None = None
) -> dict[str, Any]:
    """A `google.rpc.Status` error as FCM sends it, with the FcmError detail when coded."""
    details: list[dict[str, Any]] = []
    if error_code is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        )
    if field is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    status = CANONICAL.get(http_status, "UNKNOWN")
    error = {"code": http_status, "message": message, "status": status, "details": details}
    return {"error": error}


class FcmReject(Exception):
    """A validation failure, answered as an FCM error."""

    def __init__(
        self, http_status: int, code: str | None, message: str, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.body = fcm_error_body(http_status, code, message, field)
        self.http_status = http_status


class FcmBackend:
    """The emulator's state and request handling, separate from serving it."""

    def __init__(self, issuer: OAuthIssuer, state: EmulatorState) -> None:
        self.issuer = issuer
        self.state = state
        self.projects: dict[str, str] = {}
        """client_email -> project_id of the service accounts it knows."""
        self.unregistered: set[str] = set()
        self.owners: dict[str, str] = {}
        """token -> project that registered it (others get SENDER_ID_MISMATCH)."""
        self.sequence = 0

    def app(self) -> Starlette:
        routes = [
            self.issuer.route("/token"),
            Route("/v1/projects/{project}/messages:send", self.send, methods=["POST"]),
            *inspection_routes(self.state),
        ]
        return Starlette(routes=routes)

    async def send(self, request: Request) -> Response:
        body = await request.body()
        project = request.path_params["project"]
        token: str | None = None
        try:
            message = _message(body)
            token = message.get("token") if isinstance(message.get("token"), str) else None
            fault = self.state.faults.take(token)
            if fault is not None:
                return await self._fault(request, body, token, fault)
            self._authorize(request.headers.get("authorization"), project)
            self._validate(message)
            self._check_target(project, token)
        except FcmReject as exc:
            await self._record(request, body, token, exc.http_status)
            return JSONResponse(exc.body, status_code=exc.http_status)
        await self._record(request, body, token, 200)
        if json.loads(body).get("validate_only") is True:
            return JSONResponse({"name": f"projects/{project}/messages/fake_message_id"})
        self.sequence += 1
        name = f"projects/{project}/messages/0:{self.sequence}%{secrets.token_hex(8)}"
        return JSONResponse({"name": name})

    def _authorize(self, authorization: str | None, project: str) -> None:
        subject = self.issuer.subject(authorization)
        if subject is None:
            raise FcmReject(
                401,
                None,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        if self.projects.get(subject) != project:
            raise FcmReject(
                403,
                None,
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}'",
            )

    def _validate(self, message: Mapping[str, Any]) -> None:
        targets = [k for k in ("token", "topic", "condition") if k in message]
        if len(targets) != 1:
            raise FcmReject(400, "INVALID_ARGUMENT", "Exactly one of token, topic or condition")
        token = message.get("token")
        if "token" in message and not (isinstance(token, str) and TOKEN_FORMAT.match(token)):
            raise FcmReject(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                "message.token",
            )
        _check_data(message.get("data"), "message.data")
        android = message.get("android") or {}
        if not isinstance(android, Mapping):
            raise FcmReject(400, None, "Invalid JSON payload received. 'android' is not an object")
        _check_data(android.get("data"), "message.android.data")
        _check_android(android)
        counted = {k: v for k, v in message.items() if k not in ("token", "topic", "condition")}
        size = len(json.dumps(counted, ensure_ascii=False, separators=(",", ":")).encode())
        limit = MAX_PAYLOAD if "token" in message else MAX_PAYLOAD // 2
        if size > limit:
            raise FcmReject(400, "INVALID_ARGUMENT", f"Message is too big: {size} > {limit}")

    def _check_target(self, project: str, token: str | None) -> None:
        if token is None:
            return
        if token in self.unregistered:
            raise FcmReject(404, "UNREGISTERED", "Requested entity was not found.")
        owner = self.owners.get(token)
        if owner is not None and owner != project:
            raise FcmReject(403, "SENDER_ID_MISMATCH", "SenderId mismatch")

    async def _fault(
        self, request: Request, body: bytes, token: str | None, fault: Fault
    ) -> Response:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        payload = fault.body
        if payload is None:
            code = DEFAULT_CODES.get(fault.status)
            payload = fcm_error_body(fault.status, code, f"Injected {code or fault.status}")
        await self._record(request, body, token, fault.status)
        return JSONResponse(payload, status_code=fault.status, headers=dict(fault.headers))

    async def _record(self, request: Request, body: bytes, token: str | None, status: int) -> None:
        await self.state.record(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                token=token,
                status=status,
                http_version=str(request.scope.get("http_version", "1.1")),
            )
        )


def _message(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise FcmReject(400, None, f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("message"), dict):
        raise FcmReject(400, None, "Invalid JSON payload received. 'message' is required")
    unknown = set(payload) - {"message", "validate_only"}
    if unknown:
        raise FcmReject(400, None, f"Invalid JSON payload received. Unknown name {unknown.pop()!r}")
    message: dict[str, Any] = payload["message"]
    return message


def _check_data(data: Any, where: str) -> None:
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise FcmReject(400, "INVALID_ARGUMENT", f"Invalid value at '{where}'", where)
    for index, (key, value) in enumerate(data.items()):
        if not isinstance(value, str):
            text = f"Invalid value at '{where}[{index}].value' (TYPE_STRING), {value}"
            raise FcmReject(400, "INVALID_ARGUMENT", text, f"{where}[{index}].value")
        if key in RESERVED_KEYS or key.startswith(RESERVED_PREFIXES):
            raise FcmReject(400, "INVALID_ARGUMENT", f"Invalid data payload key: {key}", where)


def _check_android(android: Mapping[str, Any]) -> None:
    priority = android.get("priority")
    if priority is not None and str(priority).upper() not in ("HIGH", "NORMAL"):
        raise FcmReject(
            400,
            "INVALID_ARGUMENT",
            f"Invalid value at 'message.android.priority' (type.googleapis.com/"
            f'google.firebase.fcm.v1.AndroidMessagePriority), "{priority}"',
            "message.android.priority",
        )
    ttl = android.get("ttl")
    if ttl is None:
        return
    if not isinstance(ttl, str) or not TTL_FORMAT.match(ttl) or float(ttl[:-1]) > MAX_TTL:
        raise FcmReject(
            400,
            "INVALID_ARGUMENT",
            f"Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf."
            f"Duration), Illegal duration format; duration must end with 's': {ttl}",
            "message.android.ttl",
        )


@functools.cache
def _account_key() -> rsa.RSAPrivateKey:
    """One RSA key for every service account the emulators of this process hand out.

    Generating a 2048-bit key costs up to a few hundred milliseconds on a busy
    machine; accounts still differ by email and key id, and the issuer checks
    the assertion's `iss` before its signature.
    """
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FcmEmulator(Emulator):
    """`async with FcmEmulator() as emu:` serves the fake on a loopback port."""

    def __init__(
        self, *, clock: Clock | None = None, tls: bool = False, token_lifetime: int = 3599
    ) -> None:
        self.state = EmulatorState()
        self.issuer = OAuthIssuer(clock=clock, lifetime=token_lifetime, scopes=FCM_SCOPES)
        self.backend = FcmBackend(self.issuer, self.state)
        self.server = EmulatorServer(self.backend.app(), tls=tls)

    @property
    def token_url(self) -> str:
        return self.server.url + "/token"

    def service_account(self, project_id: str, client_email: str | None = None) -> dict[str, Any]:
        """A fresh service-account JSON for `project_id` whose token_uri is this emulator."""
        key = _account_key()
        email = client_email or f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.issuer.add_service_account(email, public)
        self.backend.projects[email] = project_id
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": secrets.token_hex(20),
            "private_key": private,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url,
        }

    def unregister(self, token: str) -> None:
        """Make `token` answer 404 UNREGISTERED from now on (app uninstalled)."""
        self.backend.unregistered.add(token)

    def register(self, token: str, project_id: str) -> None:
        """Bind `token` to a project; sending to it from another gives SENDER_ID_MISMATCH."""
        self.backend.owners[token] = project_id
