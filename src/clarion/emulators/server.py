"""Run an emulator's ASGI app on a loopback port, with TLS and HTTP/2 when asked.

Used as `async with EmulatorServer(app, tls=True) as server: server.url`.
The port is chosen by the kernel (bind to port 0) so parallel tests never clash.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from clarion.emulators.tls import TlsFiles, make_tls_files


class EmulatorServer:
    """Serves `app` on 127.0.0.1 until the context exits.

    With `tls=True` the server offers HTTP/2 and HTTP/1.1 over TLS (ALPN) using
    a certificate from `tls_files` (generated when not given); clients trust
    `ca_file`. Without TLS it speaks HTTP/1.1 and cleartext HTTP/2 (h2c).
    With `client_ca_file` (TLS only) every client must present a certificate
    issued by that CA (mutual TLS, as APNs certificate auth does).
    """

    def __init__(
        self,
        app: Any,
        *,
        tls: bool = False,
        tls_files: TlsFiles | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        client_ca_file: Path | None = None,
    ) -> None:
        self.app = app
        self.client_ca_file = client_ca_file
        self.tls_files = (tls_files or make_tls_files()) if tls else None
        self.host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._shutdown = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_files else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        return self.tls_files.ca_file if self.tls_files else None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.set_inheritable(True)
        self._socket = sock
        self._port = int(sock.getsockname()[1])
        config = Config()
        config.bind = [f"fd://{sock.fileno()}"]
        config.accesslog = None
        config.errorlog = None
        config.keep_alive_timeout = 3600
        # Push services keep a connection for hours; Hypercorn's default sends
        # GOAWAY after 1000 requests, failing the streams in flight.
        config.keep_alive_max_requests = 1_000_000_000
        config.h2_max_concurrent_streams = 1000
        config.backlog = 1024
        if self.tls_files:
            config.certfile = str(self.tls_files.cert_file)
            config.keyfile = str(self.tls_files.key_file)
            if self.client_ca_file is not None:
                config.ca_certs = str(self.client_ca_file)
                config.verify_mode = ssl.CERT_REQUIRED
        self._shutdown.clear()
        started = asyncio.Event()

        async def _run() -> None:
            started.set()
            await serve(self.app, config, shutdown_trigger=self._shutdown.wait)

        self._task = asyncio.create_task(_run())
        await started.wait()
        await self._wait_until_accepting()

    async def _wait_until_accepting(self) -> None:
        for _ in range(200):
            try:
                _reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise RuntimeError(f"emulator on {self.url} did not start")

    async def stop(self) -> None:
        self._shutdown.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=10)
            self._task = None
        if self._socket is not None:
            # hypercorn owns the descriptor once serving and closes it itself.
            self._socket.detach()

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
