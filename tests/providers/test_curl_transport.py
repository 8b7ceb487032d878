"""CurlTransport over real sockets: hypercorn (TLS + HTTP/2, or HTTP/1.1) and a raw h2 server."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, StreamEnded
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from clarion.emulators.apns_certs import ClientCertificateAuthority
from clarion.emulators.server import EmulatorServer
from clarion.emulators.tls import make_tls_files
from clarion.providers.base import HttpRequest, HttpResponse, TransportError
from clarion.providers.curl_transport import CurlTransport, parse_headers


class _Site:
    """A small app that records what reached it; `release` lets slow requests finish."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.clients: set[tuple[str, int]] = set()
        self.release = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route("/echo", self.echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
                Route("/status/{code:int}", self.status, methods=["GET", "POST"]),
                Route("/slow", self.slow),
                Route("/big", self.big),
                Route("/stream", self.stream),
                Route("/redirect", self.redirect),
                Route("/target", self.echo),
            ]
        )

    def _record(self, request: Request) -> None:
        self.hits.append(request.url.path)
        client = request.scope.get("client")
        if client:
            self.clients.add((client[0], client[1]))

    async def echo(self, request: Request) -> JSONResponse:
        self._record(request)
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "http_version": request.scope["http_version"],
                "body": body.hex(),
                "content_type": request.headers.get("content-type"),
                "x_token": request.headers.get("x-token"),
            },
            headers={"X-Mixed-Case": "yes"},
        )

    async def status(self, request: Request) -> JSONResponse:
        self._record(request)
        code = request.path_params["code"]
        return JSONResponse({"reason": f"status {code}", "timestamp": 1767225600000}, code)

    async def slow(self, request: Request) -> Response:
        self._record(request)
        await self.release.wait()
        return Response(b"late")

    async def big(self, request: Request) -> Response:
        self._record(request)
        return Response(b"x" * int(request.query_params["size"]))

    async def stream(self, request: Request) -> StreamingResponse:
        self._record(request)
        size = int(request.query_params["size"])

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(0, size, 4096):
                yield b"y" * 4096
                await asyncio.sleep(0)

        return StreamingResponse(chunks())

    async def redirect(self, request: Request) -> RedirectResponse:
        self._record(request)
        return RedirectResponse("/target", status_code=302)


@pytest.fixture
async def site() -> AsyncIterator[_Site]:
    site = _Site()
    yield site
    site.release.set()


@pytest.fixture
async def server(site: _Site) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(site.app, tls=True) as server:
        yield server
        site.release.set()


@pytest.fixture
async def transport(server: EmulatorServer) -> AsyncIterator[CurlTransport]:
    transport = CurlTransport(ca_file=server.ca_file)
    yield transport
    await transport.aclose()


def _get(server: EmulatorServer, path: str, timeout: float = 5.0) -> HttpRequest:
    return HttpRequest("GET", server.url + path, timeout=timeout)


async def test_concurrent_requests_are_multiplexed_on_one_http2_connection(
    site: _Site, server: EmulatorServer, transport: CurlTransport
) -> None:
    requests = [
        HttpRequest("POST", server.url + "/echo", body=bytes([i % 256]) * 10) for i in range(200)
    ]
    responses = await asyncio.gather(*(transport.request(r) for r in requests))
    assert {r.status for r in responses} == {200}
    assert {r.json_version for r in map(_Decoded, responses)} == {"2"}
    assert [_Decoded(r).body for r in responses] == [r.body.hex() for r in requests]
    assert len(site.clients) == 1


async def test_error_status_and_json_body_are_returned_and_the_connection_goes_on(
    site: _Site, server: EmulatorServer, transport: CurlTransport
) -> None:
    gone, broken, fine = await asyncio.gather(
        transport.request(HttpRequest("POST", server.url + "/status/410", body=b"{}")),
        transport.request(_get(server, "/status/500")),
        transport.request(_get(server, "/echo")),
    )
    assert (gone.status, gone.headers["content-type"]) == (410, "application/json")
    assert gone.body == b'{"reason":"status 410","timestamp":1767225600000}'
    assert (broken.status, broken.body) == (
        500,
        b'{"reason":"status 500","timestamp":1767225600000}',
    )
    assert fine.status == 200
    after = await transport.request(_get(server, "/status/404"))
    assert after.status == 404
    assert len(site.clients) == 1


async def test_slow_request_times_out_while_the_others_succeed(
    server: EmulatorServer, transport: CurlTransport
) -> None:
    slow = asyncio.ensure_future(transport.request(_get(server, "/slow", timeout=0.3)))
    fast = await asyncio.gather(*(transport.request(_get(server, "/echo")) for _ in range(20)))
    assert {r.status for r in fast} == {200}
    with pytest.raises(TransportError, match=r"(?i)timed out"):
        await slow


async def test_response_over_the_limit_fails_cleanly_and_the_transport_still_works(
    server: EmulatorServer,
) -> None:
    transport = CurlTransport(ca_file=server.ca_file, max_response_bytes=64 * 1024)
    try:
        exact = await transport.request(_get(server, "/big?size=65536"))
        with pytest.raises(TransportError, match="over 65536 bytes"):
            await transport.request(_get(server, "/big?size=65537"))
        with pytest.raises(TransportError, match="over 65536 bytes"):
            await transport.request(_get(server, "/stream?size=409600"))
        after = await transport.request(_get(server, "/echo"))
    finally:
        await transport.aclose()
    assert len(exact.body) == 65536
    assert after.status == 200


async def test_redirect_is_returned_as_is_and_not_followed(
    site: _Site, server: EmulatorServer, transport: CurlTransport
) -> None:
    response = await transport.request(_get(server, "/redirect"))
    assert response.status == 302
    assert response.headers["location"].endswith("/target")
    assert site.hits == ["/redirect"]


async def test_client_certificate_is_presented_when_configured(site: _Site) -> None:
    authority = ClientCertificateAuthority()
    cert_pem, key_pem = authority.issue("com.example.app")
    cert_file, key_file = authority.ca_file.with_name("c.pem"), authority.ca_file.with_name("k.pem")
    cert_file.write_text(cert_pem)
    key_file.write_text(key_pem)
    async with EmulatorServer(site.app, tls=True, client_ca_file=authority.ca_file) as server:
        with_cert = CurlTransport(ca_file=server.ca_file, client_cert=(cert_file, key_file))
        without_cert = CurlTransport(ca_file=server.ca_file)
        try:
            response = await with_cert.request(_get(server, "/echo"))
            with pytest.raises(TransportError):
                await without_cert.request(_get(server, "/echo"))
        finally:
            await with_cert.aclose()
            await without_cert.aclose()
    assert response.status == 200
    assert site.hits == ["/echo"]


async def test_address_guard_refusal_fails_the_request_before_it_reaches_the_server(
    site: _Site, server: EmulatorServer
) -> None:
    seen: list[str] = []

    def refuse_loopback(address: str) -> bool:
        seen.append(address)
        return address != "127.0.0.1"

    transport = CurlTransport(ca_file=server.ca_file, address_guard=refuse_loopback)
    try:
        with pytest.raises(TransportError, match=r"127\.0\.0\.1 refused by the address guard"):
            await transport.request(_get(server, "/echo"))
    finally:
        await transport.aclose()
    assert seen == ["127.0.0.1"]
    assert site.hits == []


async def test_address_guard_that_allows_sees_the_address_and_lets_the_request_through(
    server: EmulatorServer,
) -> None:
    seen: list[str] = []

    def allow(address: str) -> bool:
        seen.append(address)
        return True

    transport = CurlTransport(ca_file=server.ca_file, address_guard=allow)
    try:
        responses = [await transport.request(_get(server, "/echo")) for _ in range(3)]
    finally:
        await transport.aclose()
    assert [r.status for r in responses] == [200, 200, 200]
    assert seen == ["127.0.0.1"]


async def test_http1_only_server_is_spoken_to_in_http1_with_lower_case_header_names(
    site: _Site,
) -> None:
    async with EmulatorServer(site.app) as server:
        transport = CurlTransport(max_host_connections=4)
        try:
            responses = await asyncio.gather(
                *(transport.request(_get(server, "/echo")) for _ in range(12))
            )
        finally:
            await transport.aclose()
    assert {_Decoded(r).json_version for r in responses} == {"1.1"}
    assert all(r.headers["x-mixed-case"] == "yes" for r in responses)
    assert 1 < len(site.clients) <= 4


async def test_methods_headers_and_binary_bodies_go_out_unchanged(
    server: EmulatorServer, transport: CurlTransport
) -> None:
    sent = [
        HttpRequest("POST", server.url + "/echo", (("X-Token", "a b"),), b"\x00\x01\xff"),
        HttpRequest("GET", server.url + "/echo"),
        HttpRequest("PUT", server.url + "/echo", (("content-type", "text/plain"),), b"put"),
        HttpRequest("DELETE", server.url + "/echo"),
        HttpRequest("PATCH", server.url + "/echo", (), b"x" * 5000),
        HttpRequest("POST", server.url + "/echo", (), b""),
    ]
    results = [_Decoded(await transport.request(request)) for request in sent]
    assert [(d.method, d.body, d.content_type) for d in results] == [
        ("POST", "0001ff", None),
        ("GET", "", None),
        ("PUT", "707574", "text/plain"),
        ("DELETE", "", None),
        ("PATCH", "78" * 5000, None),
        ("POST", "", None),
    ]
    assert results[0].x_token == "a b"


async def test_header_injection_and_non_ascii_headers_are_refused_before_sending(
    site: _Site, server: EmulatorServer, transport: CurlTransport
) -> None:
    injected = HttpRequest("GET", server.url + "/echo", (("x-token", "a\r\nx-admin: 1"),))
    accented = HttpRequest("GET", server.url + "/echo", (("x-token", "café"),))
    for request in (injected, accented):
        with pytest.raises(TransportError, match="cannot send GET"):
            await transport.request(request)
    assert site.hits == []
    assert (await transport.request(_get(server, "/echo"))).status == 200


async def test_cancelled_request_gives_its_slot_back(
    server: EmulatorServer,
) -> None:
    transport = CurlTransport(ca_file=server.ca_file, max_concurrency=1)
    try:
        slow = asyncio.ensure_future(transport.request(_get(server, "/slow")))
        await asyncio.sleep(0.1)
        slow.cancel()
        response = await transport.request(_get(server, "/echo"))
    finally:
        await transport.aclose()
    assert slow.cancelled()
    assert response.status == 200


async def test_request_waiting_for_a_slot_times_out_within_its_own_timeout(
    server: EmulatorServer,
) -> None:
    transport = CurlTransport(ca_file=server.ca_file, max_concurrency=1)
    try:
        slow = asyncio.ensure_future(transport.request(_get(server, "/slow", timeout=0.5)))
        await asyncio.sleep(0.05)
        with pytest.raises(TransportError, match="waiting for a free slot"):
            await transport.request(_get(server, "/echo", timeout=0.1))
        with pytest.raises(TransportError):
            await slow
    finally:
        await transport.aclose()


async def test_closing_fails_requests_in_flight(site: _Site, server: EmulatorServer) -> None:
    transport = CurlTransport(ca_file=server.ca_file)
    slow = asyncio.ensure_future(transport.request(_get(server, "/slow")))
    await asyncio.sleep(0.1)
    await transport.aclose()
    with pytest.raises(TransportError, match="closed"):
        await slow
    with pytest.raises(TransportError, match="closed"):
        await transport.request(_get(server, "/echo"))
    site.release.set()
    await asyncio.sleep(0)


class _DroppingH2Server:
    """HTTP/2 over TLS that aborts its first TCP connection once `drop_after` requests arrived.

    On that connection the first `answered` requests get a full 200; the
    others get their status and half a body (`half_answer`) or nothing.
    Later connections answer every request with 200; `connections` counts them.
    """

    def __init__(self, drop_after: int, *, answered: int = 0, half_answer: bool = True) -> None:
        self.drop_after = drop_after
        self.answered = answered
        self.half_answer = half_answer
        self.connections = 0
        self.tls = make_tls_files()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    async def __aenter__(self) -> _DroppingH2Server:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        context.set_alpn_protocols(["h2"])
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=context)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.close()
        await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self._serve(reader, writer, dropping=self.connections == 1)
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, dropping: bool
    ) -> None:
        h2 = H2Connection(H2Configuration(client_side=False))
        h2.initiate_connection()
        writer.write(h2.data_to_send())
        received = 0
        while data := await reader.read(65536):
            for event in h2.receive_data(data):
                if isinstance(event, DataReceived):
                    h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, StreamEnded):
                    received += 1
                    if not dropping or received <= self.answered:
                        h2.send_headers(event.stream_id, [(":status", "200")], end_stream=True)
                    elif self.half_answer:
                        h2.send_headers(event.stream_id, [(":status", "200")])
                        h2.send_data(event.stream_id, b"half a bo")
            writer.write(h2.data_to_send())
            await writer.drain()
            if dropping and received >= self.drop_after:
                writer.transport.abort()
                return


async def test_dropped_connection_fails_only_its_own_requests_and_the_next_one_reconnects(
    site: _Site,
) -> None:
    async with (
        _DroppingH2Server(drop_after=3) as dropping,
        EmulatorServer(site.app, tls=True, tls_files=dropping.tls) as healthy,
    ):
        transport = CurlTransport(ca_file=dropping.ca_file)
        try:
            request = HttpRequest("POST", dropping.url + "/3/device/ab", body=b"{}", timeout=5.0)
            outcomes = await asyncio.gather(
                *(transport.request(request) for _ in range(3)),
                transport.request(_get(healthy, "/echo")),
                return_exceptions=True,
            )
            after = await transport.request(request)
        finally:
            await transport.aclose()
    *dropped, bystander = outcomes
    assert all(isinstance(outcome, TransportError) for outcome in dropped), dropped
    assert isinstance(bystander, HttpResponse)
    assert bystander.status == 200
    assert after.status == 200
    assert dropping.connections == 2


async def test_reused_connection_dying_before_any_answer_byte_is_retried_once_by_libcurl() -> None:
    async with _DroppingH2Server(drop_after=2, answered=1, half_answer=False) as server:
        transport = CurlTransport(ca_file=server.ca_file)
        try:
            request = HttpRequest("POST", server.url + "/3/device/ab", body=b"{}", timeout=5.0)
            first = await transport.request(request)
            resent = await transport.request(request)
        finally:
            await transport.aclose()
    assert (first.status, resent.status) == (200, 200)
    assert server.connections == 2


def test_header_parsing_keeps_only_the_final_response_and_joins_repeats() -> None:
    lines = [
        b"HTTP/1.1 103 Early Hints\r\n",
        b"Link: </a.css>\r\n",
        b"\r\n",
        b"HTTP/1.1 200 OK: fine\r\n",
        b"Set-Cookie: a=1\r\n",
        b"set-cookie: b=2\r\n",
        b"Apns-Id:  abc \r\n",
        b"\r\n",
    ]
    assert parse_headers(lines) == {"set-cookie": "a=1, b=2", "apns-id": "abc"}


class _Decoded:
    """The JSON the echo route answers, as attributes."""

    def __init__(self, response: HttpResponse) -> None:
        body = json.loads(response.body)
        self.method = body.get("method")
        self.json_version = body.get("http_version")
        self.body = body.get("body")
        self.content_type = body.get("content_type")
        self.x_token = body.get("x_token")
