"""A local APNs: HTTP/2 over TLS, validating pushes the way Apple does.

    async with ApnsEmulator(topics=["com.example.app"]) as emu:
        private_pem = emu.new_signing_key(team_id="TEAM000001", key_id="KEY0000001")
        ...  # POST {emu.url}/3/device/<hex token>, trusting emu.ca_file

Token mode (default) checks the provider JWT (ES256, known `kid`, `iss` the
key's team, `iat` under an hour old by the emulator's clock, token changes per
connection no more often than every 20 minutes; see `apns_checks`).
Certificate mode (`certificate_auth=True`) requires a client certificate from
the emulator's own CA (`issue_certificate`) in the TLS handshake and ignores
`authorization`, like APNs.

Then, in order: method and path (405 `MethodNotAllowed`, 404 `BadPath`),
repeated headers, topic against push type and known bundle ids, priority
(background with 10 is `BadPriority`), expiration, collapse id, `apns-id`
format, device token format, body (empty, 4096/5120-byte limit, JSON with an
`aps` object), and the device token's state (`unregister`, `expire`, `bind`).
Success is 200 with `apns-id` (echoed or generated) and, in the sandbox,
`apns-unique-id`.

Faults from `state.faults`, keyed by device token, come before any check; a
fault without a body answers `{"reason": <the usual reason for its status>}`.
`drop` is not supported.

Two servers carry it. By default Hypercorn (`EmulatorServer`), which also
serves the `/_emulator/...` inspection routes and the token-state route for
clients outside the test process. With `raw_h2=True`, `apns_h2.RawApnsServer`
adds what APNs does at the connection level: one stream until the first valid
JWT, headers-only success answers (no DATA frame), GOAWAY with a JSON reason
(`goaway`); it serves APNs paths only. Neither reads the client certificate's
UID: in certificate mode every known bundle id is allowed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.clock import Clock, SystemClock
from clarion.emulators.apns_certs import ClientCertificateAuthority
from clarion.emulators.apns_checks import (
    Answer,
    JwtJudge,
    Refusal,
    SigningKey,
    check_device_token,
    check_headers,
    check_options,
    check_payload,
    check_topic,
)
from clarion.emulators.apns_h2 import RawApnsServer
from clarion.emulators.base import Emulator
from clarion.emulators.recording import EmulatorState, Fault, RecordedRequest, inspection_routes
from clarion.emulators.server import EmulatorServer

__all__ = ["ApnsEmulator", "SigningKey", "create_apns_app"]

DEVICE_PATH = "/3/device/"
DEFAULT_REASONS = {
    400: "BadDeviceToken",
    403: "InvalidProviderToken",
    404: "BadPath",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ApnsEmulator(Emulator):
    """APNs on `https://127.0.0.1:<port>`; `async with ApnsEmulator(...) as emu`.

    `topics` are the bundle ids the keys or certificates may push to (push
    type suffixes are added by the emulator; MDM topics are listed as is).
    `environment` is `production` or `sandbox`; `clock` judges JWT ages.
    """

    def __init__(
        self,
        *,
        topics: Iterable[str] = ("com.example.app",),
        signing_keys: Iterable[SigningKey] = (),
        certificate_auth: bool = False,
        environment: str = "production",
        clock: Clock | None = None,
        raw_h2: bool = False,
    ) -> None:
        self.topics = set(topics)
        self.environment = environment
        self.clock: Clock = clock or SystemClock()
        self.state = EmulatorState()
        self.judge = JwtJudge(list(signing_keys))
        self.client_ca = ClientCertificateAuthority() if certificate_auth else None
        self._inactive: dict[str, Refusal] = {}
        self._bound: dict[str, str] = {}
        client_ca_file = self.client_ca.ca_file if self.client_ca else None
        self.server: EmulatorServer | RawApnsServer
        if raw_h2:
            self.server = RawApnsServer(
                self.respond, token_auth=not certificate_auth, client_ca_file=client_ca_file
            )
        else:
            self.server = EmulatorServer(
                create_apns_app(self), tls=True, client_ca_file=client_ca_file
            )

    def goaway(self, reason: str = "Shutdown") -> None:
        """Close every client connection with GOAWAY `{"reason": reason}` (raw_h2 only)."""
        if not isinstance(self.server, RawApnsServer):
            raise RuntimeError("GOAWAY needs ApnsEmulator(raw_h2=True)")
        self.server.goaway(reason)

    def new_signing_key(self, team_id: str = "TEAM000001", key_id: str = "KEY0000001") -> str:
        """Create and accept a `.p8`-style key; returns its private PEM for the client."""
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.judge.add(SigningKey(team_id, key_id, public.decode()))
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def issue_certificate(self, bundle_id: str = "com.example.app") -> tuple[str, str]:
        """A client certificate the emulator accepts: `(certificate PEM, key PEM)`."""
        if self.client_ca is None:
            raise RuntimeError("the emulator is not in certificate mode")
        return self.client_ca.issue(bundle_id)

    def unregister(self, token: str, at: datetime | None = None) -> None:
        """Answer 410 `Unregistered` for `token`, dated `at` (default: now)."""
        moment = at or self.clock.now()
        self._inactive[token] = Refusal(410, "Unregistered", int(moment.timestamp() * 1000))

    def expire(self, token: str) -> None:
        """Answer 410 `ExpiredToken` for `token`."""
        self._inactive[token] = Refusal(410, "ExpiredToken")

    def bind(self, token: str, bundle_id: str) -> None:
        """Make `token` belong to `bundle_id`: other topics get `DeviceTokenNotForTopic`."""
        self._bound[token] = bundle_id

    def reactivate(self, token: str) -> None:
        self._inactive.pop(token, None)

    def delivered(self, token: str) -> list[dict[str, Any]]:
        """The payloads accepted for `token`, oldest first."""
        return [
            json.loads(r.body)
            for r in self.state.requests
            if r.token == token and r.status == 200 and r.body
        ]

    async def handle(self, request: Request) -> Response:
        """The ASGI side of `respond`."""
        answer = await self.respond(
            request.method,
            request.url.path,
            request.headers.raw,
            await request.body(),
            connection=request.scope.get("client"),
            http_version=str(request.scope.get("http_version", "1.1")),
        )
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    async def respond(
        self,
        method: str,
        path: str,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        connection: Any,
        http_version: str = "2",
    ) -> Answer:
        """One request, whatever server carried it: a fault if one is set, else the checks.

        `connection` identifies the HTTP/2 connection (the JWT rules are per connection).
        """
        token = path.removeprefix(DEVICE_PATH) if path.startswith(DEVICE_PATH) else None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        apns_id = _response_apns_id(headers.get("apns-id"))
        fault = self.state.faults.take(token)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            answer = _fault_answer(fault, apns_id)
        else:
            try:
                answer = self._accept(method, token, raw_headers, body, apns_id, connection)
            except Refusal as refusal:
                answer = refusal.answer(apns_id)
        await self.state.record(
            RecordedRequest(
                method=method,
                path=path,
                headers=headers,
                body=body,
                token=token,
                status=answer.status,
                http_version=http_version,
            )
        )
        return answer

    def _accept(
        self,
        method: str,
        token: str | None,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
        apns_id: str,
        connection: Any,
    ) -> Answer:
        if method != "POST":
            raise Refusal(405, "MethodNotAllowed")
        if token is None or "/" in token:
            raise Refusal(404, "BadPath")
        headers = check_headers(raw_headers)
        if self.client_ca is None:
            now = self.clock.now().timestamp()
            self.judge.check(headers.get("authorization"), connection, now)
        default_topic = (
            next(iter(self.topics)) if self.client_ca and len(self.topics) == 1 else None
        )
        push_type = check_topic(headers, frozenset(self.topics), default_topic)
        check_options(headers, push_type)
        check_device_token(token)
        check_payload(body, push_type)
        if token in self._inactive:
            raise self._inactive[token]
        bound = self._bound.get(token)
        topic = headers.get("apns-topic", default_topic) or ""
        if bound is not None and topic != bound and not topic.startswith(bound + "."):
            raise Refusal(400, "DeviceTokenNotForTopic")
        answer = {"apns-id": apns_id}
        if self.environment == "sandbox":
            answer["apns-unique-id"] = str(uuid.uuid4())
        return Answer(200, answer)

    async def set_token_state(self, request: Request) -> Response:
        """`PUT /_emulator/apns/tokens/{token}` `{"state": "unregistered|expired|active"}`."""
        token = request.path_params["token"]
        spec = await request.json()
        state = spec.get("state")
        if state == "unregistered":
            self.unregister(token)
        elif state == "expired":
            self.expire(token)
        elif state == "active":
            self.reactivate(token)
        else:
            return JSONResponse({"detail": "state is unregistered, expired or active"}, 422)
        if "bundle_id" in spec:
            self.bind(token, str(spec["bundle_id"]))
        return Response(status_code=204)


def _response_apns_id(requested: str | None) -> str:
    if requested:
        try:
            if str(uuid.UUID(requested)) == requested:
                return requested
        except ValueError:
            pass
    return str(uuid.uuid4())


def _fault_answer(fault: Fault, apns_id: str) -> Answer:
    headers = {"apns-id": apns_id, **fault.headers}
    if fault.status == 200:
        return Answer(200, headers)
    if isinstance(fault.body, str | bytes):
        text = fault.body.encode() if isinstance(fault.body, str) else fault.body
        return Answer(fault.status, headers, text)
    body = fault.body or {"reason": DEFAULT_REASONS.get(fault.status, "InternalServerError")}
    headers["content-type"] = "application/json"
    return Answer(fault.status, headers, json.dumps(body).encode())


def create_apns_app(emulator: ApnsEmulator) -> Starlette:
    """The APNs routes plus the shared `/_emulator/...` inspection routes."""
    return Starlette(
        routes=[
            *inspection_routes(emulator.state),
            Route("/_emulator/apns/tokens/{token}", emulator.set_token_state, methods=["PUT"]),
            Route("/{path:path}", emulator.handle, methods=ALL_METHODS),
        ]
    )
