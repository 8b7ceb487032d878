"""What every emulator shares: a log of received requests and injectable faults.

Each emulator app mounts `inspection_routes(state)`: `GET /_emulator/requests`
lists what arrived, `DELETE /_emulator/requests` clears it, `PUT
/_emulator/faults/{token}` (or `*` for every request) makes the next answers
fail. Tests use the same objects directly (`emulator.state.faults.set(...)`).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ANY_TOKEN = "*"  # noqa: S105 - a wildcard, not a secret


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the emulator received it (header names lower case)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    token: str | None
    status: int
    received_at: float = field(default_factory=time.time)
    http_version: str = "1.1"
    decrypted: bytes | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["headers"] = dict(self.headers)
        data["body"] = base64.b64encode(self.body).decode()
        data["decrypted"] = (
            base64.b64encode(self.decrypted).decode() if self.decrypted is not None else None
        )
        return data


@dataclass(frozen=True, slots=True)
class Fault:
    """An answer to give instead of the normal one.

    `status`/`body`/`headers` replace the response; `delay` sleeps first;
    `drop` closes the connection without answering; `times` limits how many
    requests it hits (None: until cleared).
    """

    status: int = 500
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    times: int | None = None


class FaultPlan:
    """Faults keyed by device token, or `ANY_TOKEN` for every request."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._remaining: dict[str, int | None] = {}

    def set(self, token: str, fault: Fault) -> None:
        self._faults[token] = fault
        self._remaining[token] = fault.times

    def set_all(self, fault: Fault) -> None:
        self.set(ANY_TOKEN, fault)

    def clear(self, token: str | None = None) -> None:
        if token is None:
            self._faults.clear()
            self._remaining.clear()
        else:
            self._faults.pop(token, None)
            self._remaining.pop(token, None)

    def take(self, token: str | None) -> Fault | None:
        """The fault for this request, consuming one use of a limited fault."""
        for key in (token, ANY_TOKEN):
            if key is None or key not in self._faults:
                continue
            fault = self._faults[key]
            remaining = self._remaining[key]
            if remaining is not None:
                if remaining <= 1:
                    self.clear(key)
                else:
                    self._remaining[key] = remaining - 1
            return fault
        return None


class EmulatorState:
    """Shared by an emulator's handlers and by whoever inspects it."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.faults = FaultPlan()
        self._arrived = asyncio.Condition()

    async def record(self, request: RecordedRequest) -> None:
        self.requests.append(request)
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_for(self, count: int) -> list[RecordedRequest]:
        """Wait until at least `count` requests arrived (bound it with `asyncio.timeout`)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    def clear(self) -> None:
        self.requests.clear()


def inspection_routes(state: EmulatorState) -> list[Route]:
    """The `/_emulator/...` routes every emulator exposes."""

    async def list_requests(request: Request) -> Response:
        return JSONResponse({"items": [r.as_json() for r in state.requests]})

    async def clear_requests(request: Request) -> Response:
        state.clear()
        return Response(status_code=204)

    async def put_fault(request: Request) -> Response:
        spec = await request.json()
        state.faults.set(request.path_params["token"], Fault(**spec))
        return Response(status_code=204)

    async def delete_fault(request: Request) -> Response:
        token = request.path_params["token"]
        state.faults.clear(None if token == ANY_TOKEN else token)
        return Response(status_code=204)

    return [
        Route("/_emulator/requests", list_requests, methods=["GET"]),
        Route("/_emulator/requests", clear_requests, methods=["DELETE"]),
        Route("/_emulator/faults/{token:path}", put_fault, methods=["PUT"]),
        Route("/_emulator/faults/{token:path}", delete_fault, methods=["DELETE"]),
    ]
