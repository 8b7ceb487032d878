"""One pooled libcurl easy handle and the request it carries, for `CurlTransport`.

Split from `curl_transport` so the event-loop plumbing and the per-request
work read separately. Everything here runs on the hot path: options that
never change are set once per handle, and per request only the method (when
it changes), body, URL, timeout and headers are. libcurl appends header
lines and body chunks straight onto two lists (`list.append` is a C
callable, so no Python frame runs per line); they are parsed once, when the
transfer is done. The body cap is libcurl's `MAXFILESIZE`, which also stops
bodies of unannounced length as they reach it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

import pycurl

from clarion.providers.base import HttpRequest, HttpResponse, TransportError

AddressGuard = Callable[[str], bool]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024

_UNWANTED_DEFAULT_HEADERS = ("Expect:", "Content-Type:")
"""Headers libcurl would invent: `Expect: 100-continue` (a round trip) and a form content type.
An empty value only suppresses libcurl's own; a content type the request carries is kept."""


def system_trust() -> tuple[str | None, str | None]:
    """The platform's CA bundle and directory.

    The libcurl bundled with the pycurl wheel looks for a Red Hat path by
    default, so the Debian/Alpine/macOS locations Python knows are passed on.
    """
    paths = ssl.get_default_verify_paths()
    cafile = next(
        (f for f in (paths.cafile, paths.openssl_cafile) if f and Path(f).is_file()), None
    )
    capath = next((d for d in (paths.capath, paths.openssl_capath) if d and Path(d).is_dir()), None)
    return cafile, capath


class ExchangeBatch:
    """The state of one `CurlTransport.request_all` call: what is sent, what answered.

    Requests start in order as slots allow; `answers[i]` is the response (or
    the error) of `requests[i]`; `done` resolves once every request answered.
    """

    __slots__ = ("answers", "done", "in_flight", "next", "requests", "started", "timer", "waiter")

    def __init__(
        self, requests: Sequence[HttpRequest], done: asyncio.Future[None], started: float
    ) -> None:
        self.requests = requests
        self.answers: list[HttpResponse | TransportError | None] = [None] * len(requests)
        self.done = done
        self.next = 0
        self.in_flight = 0
        self.started = started
        """When the batch was handed over (loop time): queueing counts against each timeout."""
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None


class CurlExchange:
    """One pooled easy handle and the request it currently carries."""

    __slots__ = (
        "batch",
        "chunks",
        "future",
        "guard",
        "handle",
        "index",
        "lines",
        "loop",
        "method",
        "refused",
        "timeout_ms",
    )

    def __init__(self, handle: pycurl.Curl, loop: asyncio.AbstractEventLoop) -> None:
        self.handle = handle
        self.loop = loop
        self.guard: AddressGuard | None = None
        self.method = ""
        self.timeout_ms = 0
        self.future: asyncio.Future[HttpResponse] | None = None
        self.batch: ExchangeBatch | None = None
        """The `request_all` batch this request belongs to (instead of a future)."""
        self.index = 0
        self.chunks: list[bytes] = []
        self.lines: list[bytes] = []
        self.refused: str | None = None

    def start(
        self, request: HttpRequest, timeout: float, future: asyncio.Future[HttpResponse] | None
    ) -> None:
        """Point the handle at `request`; only the options that vary are set."""
        handle = self.handle
        self.future = future
        method = request.method
        if method != self.method:
            self._set_method(method, request.body)
        elif method != "GET" and method != "HEAD":
            handle.setopt(pycurl.POSTFIELDS, request.body)
        handle.setopt(pycurl.URL, request.url)
        timeout_ms = max(1, int(timeout * 1000))
        if timeout_ms != self.timeout_ms:
            handle.setopt(pycurl.TIMEOUT_MS, timeout_ms)
            self.timeout_ms = timeout_ms
        lines = [f"{name}: {value}" for name, value in request.headers]
        joined = "".join(lines)
        # Header injection guard: libcurl would put these on the wire as they are. Three
        # `in` scans (memchr) cost less than one regex search over the JWT.
        if "\r" in joined or "\n" in joined or "\x00" in joined:
            raise ValueError("a header contains a line break or NUL")
        lines += _UNWANTED_DEFAULT_HEADERS
        handle.setopt(pycurl.HTTPHEADER, lines)

    def _set_method(self, method: str, body: bytes) -> None:
        handle = self.handle
        handle.unsetopt(pycurl.CUSTOMREQUEST)
        handle.setopt(pycurl.NOBODY, 0)
        if method == "GET":
            handle.setopt(pycurl.HTTPGET, 1)
        elif method == "HEAD":
            handle.setopt(pycurl.NOBODY, 1)
        else:
            handle.setopt(pycurl.POSTFIELDS, body)
            if method != "POST":
                handle.setopt(pycurl.CUSTOMREQUEST, method)
        self.method = method

    def reset(self) -> None:
        self.future = None
        self.batch = None
        self.chunks.clear()
        self.lines.clear()
        self.refused = None

    def open_socket(self, purpose: int, address: pycurl.CurlSockAddr) -> socket.socket | int:
        """libcurl's socket opener: consult the guard before any connect."""
        host = str(address.addr[0]) if isinstance(address.addr, tuple) else ""
        guard = self.guard
        try:
            allowed = guard is None or guard(host)
        except Exception:
            allowed = False
        if not allowed:
            self.refused = host
            return pycurl.SOCKET_BAD
        sock = socket.socket(address.family, address.socktype, address.protocol)
        # pycurl dup()s the descriptor; our copy is closed once the callback returned.
        self.loop.call_soon(sock.close)
        return sock

    def response(self) -> HttpResponse:
        chunks = self.chunks
        return HttpResponse(
            self.handle.getinfo(pycurl.RESPONSE_CODE),
            parse_headers(self.lines),
            (chunks[0] if len(chunks) == 1 else b"".join(chunks)) if chunks else b"",
        )

    def error(self, code: int, message: str, limit: int) -> TransportError:
        if self.refused is not None:
            return TransportError(f"connection to {self.refused} refused by the address guard")
        if code == pycurl.E_FILESIZE_EXCEEDED:
            return TransportError(f"response body over {limit} bytes")
        return TransportError(f"curl error {code}: {message}")


def parse_headers(lines: list[bytes]) -> dict[str, str]:
    """The header lines of the final response (after any 1xx), names in lower case.

    libcurl hands over one line per call, each ending in a line feed, so the
    joined text splits back into the same lines; decoding it once instead of
    each name and value halves the builtin calls of this hot path.
    """
    text = b"".join(lines).decode("latin-1")
    final = text.rfind("\nHTTP/")
    if final >= 0:
        text = text[final + 1 :]
    rows = text.split("\n")
    headers: dict[str, str] = {}
    for row in rows[1:] if text.startswith("HTTP/") else rows:
        name, sep, value = row.partition(":")
        if sep:
            key = name.lower()
            value = value.strip(_WHITESPACE)
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


_WHITESPACE = " \t\n\r\x0b\x0c"
"""What `bytes.strip()` removes; `str.strip()` would also take latin-1's NBSP and others."""
