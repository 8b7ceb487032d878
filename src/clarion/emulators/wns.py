"""A local WNS: a token endpoint plus channel URIs that check pushes like the real service.

Tests and the demo need a WNS that fails the way Microsoft's does, so the
channel route checks, in order: the bearer token (401), the channel (404
unknown, 410 expired, 403 owned by another app), the X-WNS-* headers and their
agreement with `Content-Type` (400), `Content-Length` (411, no chunking), the
5000-byte limit (413) and, for toast, tile and badge, that the body is
well-formed XML whose root matches the type (400). Answers carry `X-WNS-Msg-ID`,
`X-WNS-Status`, `X-WNS-DeviceConnectionStatus` (when asked for),
`X-WNS-Error-Description` and `MS-CV` like the real ones.

    async with WnsEmulator(clock=clock) as emu:
        uri = emu.channel("laptop")            # https://127.0.0.1:port/?token=laptop
        emu.expire("laptop")                   # now answers 410
        emu.state.faults.set("laptop", Fault(status=406, headers=...))
"""

from __future__ import annotations

import asyncio
import re
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clarion.clock import Clock, SystemClock
from clarion.emulators.base import Emulator
from clarion.emulators.oauth import OAuthIssuer
from clarion.emulators.recording import (
    EmulatorState,
    Fault,
    RecordedRequest,
    inspection_routes,
)
from clarion.emulators.server import EmulatorServer

DEFAULT_CLIENT_ID = "ms-app://s-1-15-2-1000000000-2000000000-3000000000-4000000000"
DEFAULT_CLIENT_SECRET = "wns-emulator-secret"  # noqa: S105 - the emulator's test secret
TOKEN_PATH = "/accesstoken.srf"  # noqa: S105 - a path
SCOPES = frozenset({"notify.windows.com", "s.notify.live.net"})
MAX_PAYLOAD = 5000
XML_TYPES = {"wns/toast": "toast", "wns/tile": "tile", "wns/badge": "badge"}
TYPES = (*XML_TYPES, "wns/raw")
BEARER_CHALLENGE = 'Bearer error="invalid_request",error_description="Invalid token"'
_TAG = re.compile(r"[A-Za-z0-9]{1,16}")


@dataclass(slots=True)
class Channel:
    """One device's channel: who may push to it and whether it still works."""

    owner: str
    expired: bool = False
    device_status: str = "connected"


class WnsRejection(Exception):
    """An error answer: status, `X-WNS-Error-Description` and extra headers."""

    def __init__(self, status: int, description: str, **headers: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers


class WnsEmulator(Emulator):
    """The WNS token endpoint and channels on a loopback server.

    `accept_unknown_channels` makes any `?token=` a live channel of the default
    client (the demo registers devices without telling the emulator).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        tls: bool = True,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_lifetime: int = 86400,
        accept_unknown_channels: bool = False,
    ) -> None:
        self.clock = clock or SystemClock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.accept_unknown_channels = accept_unknown_channels
        self.issuer = OAuthIssuer(clock=self.clock, lifetime=token_lifetime, scopes=SCOPES)
        self.issuer.add_client(client_id, client_secret)
        self.state = EmulatorState()
        self.channels: dict[str, Channel] = {}
        self.app = create_wns_app(self)
        self.server = EmulatorServer(self.app, tls=tls)

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    def channel(self, name: str, *, owner: str | None = None, device: str = "connected") -> str:
        """Open a channel and return its URI (what the Windows app would register)."""
        self.channels[name] = Channel(owner or self.client_id, device_status=device)
        return f"{self.url}/?token={name}"

    def expire(self, name: str) -> None:
        """The channel's lifetime ran out: pushes to it now get 410."""
        self.channels[name].expired = True

    def forget(self, name: str) -> None:
        """WNS no longer knows the channel: pushes to it now get 404."""
        self.channels.pop(name, None)

    def throttle(self, name: str, *, continue_after: int = 60, times: int | None = 1) -> None:
        """The next push(es) to the channel get 406 `channelthrottled`."""
        headers = {"x-wns-status": "channelthrottled", "x-wns-continue-after": str(continue_after)}
        self.state.faults.set(name, Fault(status=406, headers=headers, times=times))

    def lookup(self, name: str) -> Channel | None:
        channel = self.channels.get(name)
        if channel is None and self.accept_unknown_channels:
            channel = self.channels[name] = Channel(self.client_id)
        return channel


def create_wns_app(emulator: WnsEmulator) -> Starlette:
    """The emulator's ASGI app: token endpoint, channel route, inspection routes."""

    async def push(request: Request) -> Response:
        name = request.query_params.get("token")
        body = await request.body()
        fault = emulator.state.faults.take(name)
        if fault is not None:
            return await _fault_answer(emulator, request, name, body, fault)
        try:
            headers = check_push(emulator, request, name, body)
            status = 200
        except WnsRejection as exc:
            status = exc.status
            headers = {"x-wns-error-description": exc.description, **exc.headers}
        headers = {"x-wns-msg-id": secrets.token_hex(8), "ms-cv": _cv(), **headers}
        await _record(emulator, request, name, body, status)
        return Response(status_code=status, headers=headers)

    routes = [
        emulator.issuer.route(TOKEN_PATH),
        Route("/", push, methods=["POST"]),
        *inspection_routes(emulator.state),
    ]
    return Starlette(routes=routes)


def check_push(
    emulator: WnsEmulator, request: Request, name: str | None, body: bytes
) -> dict[str, str]:
    """The success headers for a valid push; raises `WnsRejection` otherwise."""
    if not emulator.issuer.check(request.headers.get("authorization")):
        raise WnsRejection(401, "Invalid token", **{"www-authenticate": BEARER_CHALLENGE})
    channel = emulator.lookup(name) if name else None
    if channel is None:
        raise WnsRejection(404, "The channel URI is not valid or is not recognized by WNS")
    if channel.expired:
        raise WnsRejection(410, "The channel expired")
    subject = emulator.issuer.subject(request.headers.get("authorization"))
    if subject != channel.owner:
        raise WnsRejection(403, "The channel belongs to another app")
    kind = _check_headers(request)
    if "content-length" not in request.headers:
        raise WnsRejection(411, "Content-Length is required; chunked encoding is not supported")
    if len(body) > MAX_PAYLOAD:
        raise WnsRejection(413, f"The payload is {len(body)} bytes; the limit is {MAX_PAYLOAD}")
    if kind in XML_TYPES:
        check_xml(body, XML_TYPES[kind])
    answer = {"x-wns-status": "received"}
    if request.headers.get("x-wns-requestforstatus", "").lower() == "true":
        answer["x-wns-deviceconnectionstatus"] = channel.device_status
    return answer


def _check_headers(request: Request) -> str:
    headers = request.headers
    kind = headers.get("x-wns-type", "")
    if kind not in TYPES:
        raise WnsRejection(400, f"X-WNS-Type {kind!r} is missing or unknown")
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    expected = "application/octet-stream" if kind == "wns/raw" else "text/xml"
    if content_type != expected:
        raise WnsRejection(400, f"Content-Type must be {expected} for {kind}")
    for tag_header in ("x-wns-tag", "x-wns-group"):
        if tag_header in headers and not _TAG.fullmatch(headers[tag_header]):
            raise WnsRejection(400, f"{tag_header} must be 1 to 16 alphanumeric characters")
    if headers.get("x-wns-priority", "1") not in ("1", "2", "3", "4"):
        raise WnsRejection(400, "X-WNS-PRIORITY must be 1, 2, 3 or 4")
    if not headers.get("x-wns-ttl", "0").isdigit():
        raise WnsRejection(400, "X-WNS-TTL must be a number of seconds")
    if headers.get("x-wns-cache-policy", "cache") not in ("cache", "no-cache"):
        raise WnsRejection(400, "X-WNS-Cache-Policy must be cache or no-cache")
    if headers.get("x-wns-requestforstatus", "true").lower() not in ("true", "false"):
        raise WnsRejection(400, "X-WNS-RequestForStatus must be true or false")
    if "x-wns-suppresspopup" in headers:
        raise WnsRejection(400, "X-WNS-SuppressPopup is for Windows Phone channels only")
    return kind


def check_xml(body: bytes, root_name: str) -> ET.Element:
    """Parse an XML payload, refusing DTDs (no entity expansion) and a wrong root."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise WnsRejection(400, "The XML payload must not declare a DTD")
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs refused above, so no entity tricks
    except ET.ParseError as exc:
        raise WnsRejection(400, f"The XML payload is not well-formed: {exc}") from exc
    if root.tag != root_name:
        raise WnsRejection(400, f"The XML root is <{root.tag}>, expected <{root_name}>")
    return root


async def _fault_answer(
    emulator: WnsEmulator, request: Request, name: str | None, body: bytes, fault: Fault
) -> Response:
    if fault.delay:
        await asyncio.sleep(fault.delay)
    await _record(emulator, request, name, body, fault.status)
    content = fault.body if isinstance(fault.body, str | bytes) else None
    headers = {"x-wns-msg-id": secrets.token_hex(8), "ms-cv": _cv(), **fault.headers}
    return Response(content, status_code=fault.status, headers=headers)


async def _record(
    emulator: WnsEmulator, request: Request, name: str | None, body: bytes, status: int
) -> None:
    await emulator.state.record(
        RecordedRequest(
            method=request.method,
            path=request.url.path + ("?" + request.url.query if request.url.query else ""),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            token=name,
            status=status,
            http_version=str(request.scope.get("http_version", "1.1")),
        )
    )


def _cv() -> str:
    return secrets.token_urlsafe(12) + ".0"
