"""What every emulator shares: the server it runs on, its address, and `async with`."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Protocol, Self


class Server(Protocol):
    """A loopback server an emulator runs on (`EmulatorServer`, the raw HTTP/2 APNs server)."""

    @property
    def url(self) -> str: ...

    @property
    def ca_file(self) -> Path | None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Emulator:
    """Base of the emulators: `async with XxxEmulator() as emu:` serves until the block ends."""

    server: Server

    @property
    def url(self) -> str:
        """Base URL of the emulator (https on 127.0.0.1 and a port the kernel chose)."""
        return self.server.url

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate a client must trust to reach it over TLS."""
        return self.server.ca_file

    async def __aenter__(self) -> Self:
        await self.server.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.server.stop()
