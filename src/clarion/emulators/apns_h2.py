"""A raw HTTP/2 server for the APNs emulator, for what an ASGI server cannot do.

Hypercorn is enough for request/response checks, but APNs also behaves at the
connection level, and clients must cope with it:

- with token auth a new connection allows ONE stream (`SETTINGS_MAX_CONCURRENT_STREAMS
  = 1`) until a request with a valid JWT succeeds, then many (1000 here);
- a success is a HEADERS frame ending the stream, with no DATA frame (aioapns,
  for one, chokes on an empty DATA frame);
- the server can close a connection with GOAWAY whose debug data is JSON,
  `{"reason": "Shutdown"}` (`goaway`);
- PRIORITY information is ignored by APNs; the server counts it
  (`priority_signals`) so tests can see whether a client sends any.

A client that opens more streams than allowed gets the stream refused
(RST_STREAM `REFUSED_STREAM`). The same `ApnsEmulator.respond` judges each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    PriorityUpdated,
    RequestReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import H2Error
from h2.settings import SettingCodes, Settings

from clarion.emulators.apns_checks import Answer
from clarion.emulators.tls import TlsFiles, make_tls_files

STREAMS_BEFORE_AUTH = 1
STREAMS_AFTER_AUTH = 1000
READ_SIZE = 65536

Responder = Callable[..., Awaitable[Answer]]


def _settings(max_streams: int) -> Settings:
    return Settings(
        client=False,
        initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
        },
    )


class _Connection:
    """One client connection: h2 state, pending request streams, the auth gate."""

    def __init__(
        self,
        server: RawApnsServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.authenticated = not server.token_auth
        self.streams: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        advertised = STREAMS_AFTER_AUTH if self.authenticated else STREAMS_BEFORE_AUTH
        self.h2.local_settings = _settings(advertised)
        self.h2.initiate_connection()
        # h2 would kill the connection on an extra stream; `request` refuses it instead.
        self.h2.local_settings = _settings(STREAMS_AFTER_AUTH)
        self.flush()
        try:
            while data := await self.reader.read(READ_SIZE):
                if not self.receive(data):
                    break
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            for task in self.tasks:
                task.cancel()
            self.writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await self.writer.wait_closed()

    def receive(self, data: bytes) -> bool:
        try:
            events = self.h2.receive_data(data)
        except H2Error:
            self.h2.close_connection(ErrorCodes.PROTOCOL_ERROR)
            self.flush()
            return False
        for event in events:
            if isinstance(event, RequestReceived):
                self.request(event.stream_id, list(event.headers or []))
                if event.priority_updated is not None:
                    self.server.priority_signals += 1
            elif isinstance(event, DataReceived) and event.stream_id in self.streams:
                self.streams[event.stream_id][1].extend(event.data or b"")
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded) and event.stream_id in self.streams:
                task = asyncio.create_task(self.answer(event.stream_id))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(event, PriorityUpdated):
                self.server.priority_signals += 1
            elif isinstance(event, StreamReset):
                self.streams.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                return False
        self.flush()
        return True

    def request(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        open_requests = len(self.streams)
        limit = STREAMS_AFTER_AUTH if self.authenticated else STREAMS_BEFORE_AUTH
        if open_requests >= limit:
            self.server.refused_streams += 1
            self.h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        self.streams[stream_id] = (headers, bytearray())

    async def answer(self, stream_id: int) -> None:
        entry = self.streams.get(stream_id)
        if entry is None:  # reset by the client meanwhile
            return
        raw_headers, body = entry
        pseudo = {k.decode(): v.decode("latin-1") for k, v in raw_headers if k.startswith(b":")}
        regular = [(k, v) for k, v in raw_headers if not k.startswith(b":")]
        answer = await self.server.respond(
            pseudo.get(":method", ""),
            pseudo.get(":path", ""),
            regular,
            bytes(body),
            connection=self,
            http_version="2",
        )
        self.streams.pop(stream_id, None)
        if answer.status == 200 and not self.authenticated:
            self.authenticated = True
            self.h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: STREAMS_AFTER_AUTH})
        headers = [(":status", str(answer.status)), *answer.headers.items()]
        with contextlib.suppress(H2Error):
            self.h2.send_headers(stream_id, headers, end_stream=not answer.body)
            if answer.body:
                self.h2.send_data(stream_id, answer.body, end_stream=True)
        self.flush()

    def goaway(self, reason: str) -> None:
        debug = json.dumps({"reason": reason}).encode()
        self.h2.close_connection(ErrorCodes.NO_ERROR, additional_data=debug)
        self.flush()
        self.writer.close()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)


class RawApnsServer:
    """Serves `respond` over TLS + HTTP/2 (ALPN `h2` only) on 127.0.0.1."""

    def __init__(
        self,
        respond: Responder,
        *,
        token_auth: bool,
        client_ca_file: Path | None = None,
        tls_files: TlsFiles | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.respond = respond
        self.token_auth = token_auth
        self.tls_files = tls_files or make_tls_files()
        self.client_ca_file = client_ca_file
        self.host = host
        self.connections: set[_Connection] = set()
        self.priority_signals = 0
        self.refused_streams = 0
        self._server: asyncio.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.tls_files.ca_file

    def _context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_files.cert_file, self.tls_files.key_file)
        context.set_alpn_protocols(["h2"])
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=str(self.client_ca_file))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(self, reader, writer)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)

    def goaway(self, reason: str = "Shutdown") -> None:
        """Close every connection with GOAWAY carrying `{"reason": reason}`."""
        for connection in list(self.connections):
            connection.goaway(reason)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self._context())
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self.connections):
            connection.goaway("Shutdown")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), timeout=5)
        self._server = None
