"""A local BlackBerry push gateway (BES/MDS or PPG) speaking PAP 2.1.

The push route checks, in order: HTTP Basic auth (application id and
password; 401), the 8 KB limit, the `multipart/related; type="application/xml"`
body (read with the stdlib `email` parser), a validating parse of the PAP
control entity (`badmessage-response` 2000 when the DOCTYPE, an element or an
attribute is wrong: see `blackberry_pap`), the `source-reference` (2001), the
`push-id` (2007 when it was accepted before), the addresses (2002 when one is
not a known device), then injected faults. Everything else is accepted with
1001. Each push is recorded in `state.requests` (the content part decoded in
`decrypted`) and, parsed, in `pushes`.

    async with BlackBerryEmulator() as emu:
        pin = emu.register()                       # a known PIN
        emu.fail(pin, 3000)                        # pushes naming it answer 3000
        emu.state.faults.set_all(Fault(503))       # every push: HTTP 503
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email.parser
import email.policy
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.message import EmailMessage
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clarion.clock import Clock, SystemClock
from clarion.emulators.base import Emulator
from clarion.emulators.blackberry_pap import (
    PapInvalid,
    parse_address,
    parse_control,
    response_document,
)
from clarion.emulators.recording import EmulatorState, Fault, RecordedRequest, inspection_routes
from clarion.emulators.server import EmulatorServer

DEFAULT_APPLICATION_ID = "1234-emulator0a1b2c3d4e5f"
DEFAULT_PASSWORD = "bb-emulator-password"  # noqa: S105 - the emulator's test secret
PUSH_PATH = "/pap"
MAX_PUSH = 8 * 1024
ACCEPTED = "The request has been accepted for processing."


@dataclass(frozen=True, slots=True)
class PapPush:
    """One push as the gateway understood it, with the code it answered."""

    push_id: str | None
    source_reference: str | None
    devices: tuple[str, ...]
    delivery_method: str | None
    deliver_before: str | None
    content_type: str | None
    content: bytes
    code: int
    control: bytes = field(repr=False, default=b"")

    def content_json(self) -> Any:
        return json.loads(self.content)


class PapAnswer(Exception):
    """A PAP result to answer with (HTTP 200 and a push-response or badmessage-response)."""

    def __init__(self, code: int, desc: str, *, bad_message: bool = False) -> None:
        super().__init__(desc)
        self.code = code
        self.desc = desc
        self.bad_message = bad_message


class BlackBerryEmulator(Emulator):
    """A PAP push gateway on a loopback server.

    `password=None` turns Basic auth off (an MDS without push authentication);
    `accept_unknown_addresses` treats every well-formed address as a device.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        tls: bool = True,
        application_id: str = DEFAULT_APPLICATION_ID,
        password: str | None = DEFAULT_PASSWORD,
        accept_unknown_addresses: bool = False,
    ) -> None:
        self.clock = clock or SystemClock()
        self.application_id = application_id
        self.password = password
        self.accept_unknown_addresses = accept_unknown_addresses
        self.state = EmulatorState()
        self.devices: set[str] = set()
        self.accepted_push_ids: set[str] = set()
        self.pushes: list[PapPush] = []
        self.server = EmulatorServer(create_blackberry_app(self), tls=tls)

    @property
    def push_url(self) -> str:
        return self.url + PUSH_PATH

    def register(self, address: str | None = None) -> str:
        """A known device: the given PIN or email, or a new random PIN."""
        address = address or secrets.token_hex(4)
        self.devices.add(address.lower())
        return address

    def fail(self, address: str, code: int, *, times: int | None = None) -> None:
        """Pushes naming `address` answer PAP `code` (`times` pushes, or until cleared)."""
        self.state.faults.set(address.lower(), Fault(200, {"code": code}, times=times))

    def knows(self, device: str) -> bool:
        return self.accept_unknown_addresses or device.lower() in self.devices


def create_blackberry_app(emulator: BlackBerryEmulator) -> Starlette:
    """The emulator's ASGI app: the PAP push route and the inspection routes."""

    async def push(request: Request) -> Response:
        body = await request.body()
        gateway = _Gateway(emulator, request, body)
        response = await gateway.answer()
        await emulator.state.record(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                token=gateway.push.devices[0] if gateway.push and gateway.push.devices else None,
                status=response.status_code,
                http_version=str(request.scope.get("http_version", "1.1")),
                decrypted=gateway.push.content if gateway.push else None,
            )
        )
        return response

    routes = [Route(PUSH_PATH, push, methods=["POST"]), *inspection_routes(emulator.state)]
    return Starlette(routes=routes)


class _Gateway:
    """Handles one push request; `push` is what it understood of it."""

    def __init__(self, emulator: BlackBerryEmulator, request: Request, body: bytes) -> None:
        self.emulator = emulator
        self.request = request
        self.body = body
        self.push: PapPush | None = None
        self.push_id: str | None = None

    async def answer(self) -> Response:
        if not self._authorized():
            headers = {"www-authenticate": 'Basic realm="BlackBerry Push Service"'}
            return Response(status_code=401, headers=headers)
        try:
            fault = self._check()
        except PapAnswer as answer:
            return self._pap(answer.code, answer.desc, bad_message=answer.bad_message)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status == 200 and isinstance(fault.body, Mapping) and "code" in fault.body:
                code = int(fault.body["code"])
                return self._pap(code, f"injected fault {code}")
            body = fault.body if isinstance(fault.body, str | bytes) else json.dumps(fault.body)
            return Response(body if fault.body is not None else b"", fault.status, fault.headers)
        assert self.push_id is not None  # noqa: S101 - _check set it
        self.emulator.accepted_push_ids.add(self.push_id)
        return self._pap(1001, ACCEPTED)

    def _authorized(self) -> bool:
        if self.emulator.password is None:
            return True
        pair = f"{self.emulator.application_id}:{self.emulator.password}".encode()
        expected = "Basic " + base64.b64encode(pair).decode()
        return secrets.compare_digest(self.request.headers.get("authorization", ""), expected)

    def _check(self) -> Fault | None:
        """Validate the push in the gateway's order; the injected fault to answer, if any."""
        if len(self.body) > MAX_PUSH:
            raise PapAnswer(2000, f"The push exceeds {MAX_PUSH} bytes.", bad_message=True)
        control_part, content_part = self._parts()
        try:
            control = parse_control(_payload(control_part))
        except PapInvalid as exc:
            raise PapAnswer(2000, f"Invalid PAP control entity: {exc}", bad_message=True) from exc
        self.push_id = control.push_id
        devices = tuple(parse_address(a) for a in control.addresses)
        self.push = PapPush(
            push_id=control.push_id,
            source_reference=control.source_reference,
            devices=tuple(d or "" for d in devices),
            delivery_method=control.delivery_method,
            deliver_before=control.deliver_before,
            content_type=content_part.get_content_type(),
            content=_payload(content_part),
            code=0,
            control=_payload(control_part),
        )
        if control.source_reference != self.emulator.application_id:
            raise PapAnswer(2001, "The source-reference is not this push application.")
        if control.push_id in self.emulator.accepted_push_ids:
            raise PapAnswer(2007, "The supplied Push ID is not unique.")
        unknown = [a for a, d in zip(control.addresses, devices, strict=True) if not d]
        unknown += [d for d in devices if d and not self.emulator.knows(d)]
        if unknown:
            raise PapAnswer(2002, "The specified PIN is not recognized: " + ", ".join(unknown))
        for device in devices:
            fault = self.emulator.state.faults.take((device or "").lower())
            if fault is not None:
                return fault
        return None

    def _parts(self) -> tuple[EmailMessage, EmailMessage]:
        content_type = self.request.headers.get("content-type", "")
        head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        if parsed.get_content_type() != "multipart/related" or not parsed.is_multipart():
            raise PapAnswer(2000, "The body must be multipart/related.", bad_message=True)
        if parsed.get_param("type") != "application/xml":
            raise PapAnswer(2000, 'Needs type="application/xml".', bad_message=True)
        parts = list(parsed.iter_parts())
        if len(parts) != 2 or parsed.defects:
            raise PapAnswer(2000, "Expected a control entity and a content.", bad_message=True)
        control, content = parts
        if control.get_content_type() != "application/xml":
            raise PapAnswer(2000, "The first part must be application/xml.", bad_message=True)
        return control, content  # type: ignore[return-value]

    def _pap(self, code: int, desc: str, *, bad_message: bool = False) -> Response:
        if self.push is not None:
            self.push = dataclasses.replace(self.push, code=code)
            self.emulator.pushes.append(self.push)
        document = response_document(
            code,
            desc,
            push_id=None if bad_message else self.push_id,
            sender=self.emulator.push_url,
            reply_time=self.emulator.clock.now().astimezone(UTC),
        )
        return Response(document, 200, media_type="application/xml")


def _payload(part: EmailMessage) -> bytes:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise PapAnswer(2000, "A part could not be decoded.", bad_message=True)
    return data
