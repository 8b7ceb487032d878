"""A `Transport` on libcurl's multi interface, driven by the asyncio event loop.

Why: a push burst is thousands of small requests to one origin. libcurl does
TLS, HTTP/2 framing and connection management in C, multiplexing every
request onto a few long-lived connections; what is left for Python is one easy
handle per request and one future per answer. httpx stays the reference
transport; this one is for volume (APNs, FCM).

How it is driven: libcurl tells us which sockets to watch (socket callback ->
`loop.add_reader` / `add_writer`) and when to wake it (timer callback ->
`loop.call_later`). Those callbacks only record and schedule: libcurl forbids
re-entering `socket_action` from inside its own callbacks. Each readiness
event or timer calls `socket_action`, then `info_read` hands back finished
transfers, which resolve their futures. Easy handles are pooled (see
`curl_exchange`) and keep their fixed options between requests.

Guarantees: a timeout on every request (waiting for a slot is bounded by
the same timeout; once on the wire a request has its whole timeout, since a
request given up after it was sent may have arrived, and its retry would
push twice),
redirects returned as they are, response bodies capped (`max_response_bytes`),
header names in lower case, header values with line breaks refused, one
failed stream or dropped connection failing only its own requests, each
with `TransportError`. An optional `address_guard` sees the IP address of
every new connection before it is opened and can refuse it (SSRF protection
at send time).

One libcurl behaviour callers should know: when a *reused* connection dies
before any byte of a request's answer arrived, or the server refused the
stream (HTTP/2 REFUSED_STREAM, streams above a GOAWAY's last id), libcurl
sends that request again once on a fresh connection instead of failing it.
A push may then reach the service twice, exactly as after a `Retry`; there
is no libcurl option to turn this off in the version we ship.

Where the time goes (bench/transport.py, nginx on loopback): about 60% of a
request's CPU is libcurl itself (HTTP/2 + TLS framing, one `send()` per
request), the rest is this module and asyncio (a future per request, header
parsing, handle options).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pycurl

from clarion.providers.base import HttpRequest, HttpResponse, TransportError
from clarion.providers.curl_exchange import (
    DEFAULT_MAX_RESPONSE_BYTES,
    AddressGuard,
    CurlExchange,
    ExchangeBatch,
    parse_headers,
    system_trust,
)

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "AddressGuard", "CurlTransport", "parse_headers"]


DEFAULT_MAX_CONCURRENCY = 200
"""Requests in flight per transport (one per credential and process). Enough to fill the
pipe; more only queues at the service, where a push that outwaits its timeout is retried
although it may have arrived (a duplicate). Batches (`request_all`) share these slots."""


class CurlTransport:
    """A pooled, multiplexing HTTP client on pycurl; bound to one event loop.

    `max_concurrency` bounds requests in flight (others wait their turn, within
    their timeout); `max_host_connections` bounds connections per origin, and
    `max_streams_per_connection` the HTTP/2 streams libcurl puts on each
    before opening the next. `ca_file` is trusted in addition to the system's
    CAs; `client_cert` is a (certificate PEM, key PEM) pair for mutual TLS.
    """

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        client_cert: tuple[Path, Path] | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_host_connections: int = 8,
        max_streams_per_connection: int = 1000,
        address_guard: AddressGuard | None = None,
    ) -> None:
        if max_concurrency < 1 or max_response_bytes < 0:
            raise ValueError("max_concurrency must be positive and max_response_bytes >= 0")
        self._ca_file = ca_file
        self._client_cert = client_cert
        self._max_response_bytes = max_response_bytes
        self._address_guard = address_guard
        self._trust = system_trust()
        self._free_slots = max_concurrency
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._idle: list[CurlExchange] = []
        self._active: dict[pycurl.Curl, CurlExchange] = {}
        self._watching: dict[int, int] = {}
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._timer_soon = False
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        self._multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, max_host_connections)
        self._multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, max_streams_per_connection)
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)

    async def request(self, request: HttpRequest) -> HttpResponse:
        loop = self._loop or self._bind(asyncio.get_running_loop())
        timeout = request.timeout
        if self._free_slots > 0 and not self._slot_waiters:
            self._free_slots -= 1
        else:
            await self._wait_for_slot(loop, timeout)
        try:
            if self._closed:
                raise TransportError("transport is closed")
            exchange = self._idle.pop() if self._idle else self._new_exchange(loop)
            future: asyncio.Future[HttpResponse] = loop.create_future()
            try:
                exchange.start(request, timeout, future)
            except (ValueError, pycurl.error) as exc:  # UnicodeEncodeError is a ValueError
                self._recycle(exchange)
                raise TransportError(f"cannot send {request.method} {request.url}: {exc}") from exc
            self._active[exchange.handle] = exchange
            self._multi.add_handle(exchange.handle)
            try:
                return await future
            finally:
                if future.cancelled():
                    self._abandon(exchange)
        finally:
            self._release_slot()

    async def request_all(
        self, requests: Sequence[HttpRequest]
    ) -> list[HttpResponse | TransportError]:
        """Send every request, as many at once as slots allow; each one's answer, in order.

        Why: a push batch is hundreds of requests to one origin. Through
        `request` each costs a coroutine, a future and an event-loop turn on
        top of libcurl; here libcurl's completion hands the slot straight to
        the batch's next request and the caller wakes once, when the last
        answer is in. A request that fails is its `TransportError` in the
        list, never raised; one still waiting for a slot when its timeout
        (counted from this call) has passed fails so, as with `request`.
        """
        if not requests:
            return []
        loop = self._loop or self._bind(asyncio.get_running_loop())
        batch = ExchangeBatch(requests, loop.create_future(), loop.time())
        self._pump(batch, 0)
        try:
            await batch.done
        except asyncio.CancelledError:
            self._cancel_batch(batch)
            raise
        return cast(list[HttpResponse | TransportError], batch.answers)

    async def aclose(self) -> None:
        """Fail what is in flight, close every connection and handle."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle, exchange in list(self._active.items()):
            self._multi.remove_handle(handle)
            batch = exchange.batch
            self._settle(exchange, TransportError("transport closed"))
            handle.close()
            if batch is not None:
                self._pump(batch, 1)
        self._active.clear()
        self._multi.close()
        for fd in list(self._watching):
            self._watch(fd, 0)
        for exchange in self._idle:
            exchange.handle.close()
        self._idle.clear()

    # -- plumbing ---------------------------------------------------------------------------

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop, budget: float) -> None:
        """Queue for a request slot (first come, first served), for at most `budget` s."""
        waiter: asyncio.Future[None] = loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            async with asyncio.timeout(budget):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release_slot()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise TransportError(f"timed out after {budget}s waiting for a free slot") from None
            raise

    def _release_slot(self) -> None:
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free_slots += 1

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        self._loop = loop
        return loop

    def _new_exchange(self, loop: asyncio.AbstractEventLoop) -> CurlExchange:
        handle = pycurl.Curl()
        exchange = CurlExchange(handle, loop)
        setopt = handle.setopt
        setopt(pycurl.NOSIGNAL, 1)
        setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        setopt(pycurl.PIPEWAIT, 1)
        setopt(pycurl.FOLLOWLOCATION, 0)
        setopt(pycurl.MAXFILESIZE_LARGE, self._max_response_bytes)
        setopt(pycurl.WRITEFUNCTION, exchange.chunks.append)
        setopt(pycurl.HEADERFUNCTION, exchange.lines.append)
        cafile, capath = self._trust
        if self._ca_file is not None:
            cafile = str(self._ca_file)
        if cafile is not None:
            setopt(pycurl.CAINFO, cafile)
        if capath is not None:
            setopt(pycurl.CAPATH, capath)
        if self._client_cert is not None:
            setopt(pycurl.SSLCERT, str(self._client_cert[0]))
            setopt(pycurl.SSLKEY, str(self._client_cert[1]))
        if self._address_guard is not None:
            exchange.guard = self._address_guard
            setopt(pycurl.OPENSOCKETFUNCTION, exchange.open_socket)
        return exchange

    def _abandon(self, exchange: CurlExchange) -> None:
        """Detach a request whose caller stopped waiting (cancelled)."""
        if self._active.pop(exchange.handle, None) is not None:
            self._multi.remove_handle(exchange.handle)
            self._recycle(exchange)

    def _recycle(self, exchange: CurlExchange) -> None:
        exchange.reset()
        if not self._closed:
            self._idle.append(exchange)
        else:
            exchange.handle.close()

    def _on_socket(self, what: int, fd: int, _multi: pycurl.CurlMulti, _data: object) -> None:
        self._watch(fd, 0 if what == pycurl.POLL_REMOVE else what)

    def _watch(self, fd: int, what: int) -> None:
        current = self._watching.get(fd, 0)
        if what == current or self._loop is None:
            return
        loop = self._loop
        if what & pycurl.POLL_IN and not current & pycurl.POLL_IN:
            loop.add_reader(fd, self._drive, fd, pycurl.CSELECT_IN)
        elif current & pycurl.POLL_IN and not what & pycurl.POLL_IN:
            loop.remove_reader(fd)
        if what & pycurl.POLL_OUT and not current & pycurl.POLL_OUT:
            loop.add_writer(fd, self._drive, fd, pycurl.CSELECT_OUT)
        elif current & pycurl.POLL_OUT and not what & pycurl.POLL_OUT:
            loop.remove_writer(fd)
        if what:
            self._watching[fd] = what
        else:
            del self._watching[fd]

    def _on_timer(self, timeout_ms: int) -> None:
        timer = self._timer
        if timer is not None:
            if timeout_ms == 0 and self._timer_soon:
                return
            timer.cancel()
            self._timer = None
        if timeout_ms < 0 or self._loop is None or self._closed:
            return
        self._timer_soon = timeout_ms == 0
        if timeout_ms == 0:
            self._timer = self._loop.call_soon(self._on_timeout)
        else:
            self._timer = self._loop.call_later(timeout_ms / 1000, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        self._drive(pycurl.SOCKET_TIMEOUT, 0)

    def _drive(self, fd: int, events: int) -> None:
        if self._closed:
            return
        multi = self._multi
        try:
            multi.socket_action(fd, events)
        except pycurl.error as exc:
            self._fail_all(TransportError(f"curl multi failed: {exc}"))
            return
        while True:
            queued, succeeded, failed = multi.info_read()
            for handle in succeeded:
                self._finish(handle, 0, "")
            for handle, code, message in failed:
                self._finish(handle, code, message)
            if not queued:
                return

    def _finish(self, handle: pycurl.Curl, code: int, message: str) -> None:
        exchange = self._active.pop(handle, None)
        if exchange is None:
            return
        self._multi.remove_handle(handle)
        batch = exchange.batch
        if code:
            self._settle(exchange, exchange.error(code, message, self._max_response_bytes))
        else:
            self._settle(exchange, exchange.response())
        self._recycle(exchange)
        if batch is not None:
            self._pump(batch, 1)

    def _settle(self, exchange: CurlExchange, answer: HttpResponse | TransportError) -> None:
        """Hand the answer to whoever waits: the request's future or its batch."""
        batch = exchange.batch
        if batch is not None:
            batch.answers[exchange.index] = answer
            batch.in_flight -= 1
            return
        future = exchange.future
        if future is not None and not future.done():
            if isinstance(answer, TransportError):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _fail_all(self, error: TransportError) -> None:
        for handle, exchange in list(self._active.items()):
            del self._active[handle]
            self._multi.remove_handle(handle)
            batch = exchange.batch
            self._settle(exchange, error)
            self._recycle(exchange)
            if batch is not None:
                self._pump(batch, 1)

    # -- request_all ------------------------------------------------------------------------

    def _pump(self, batch: ExchangeBatch, held: int) -> None:
        """Start the batch's next requests on the `held` slots it has, then on free ones.

        A batch keeps a slot its answered request frees while it has more to
        send, and takes more only when nobody queues for one; with no slot
        and nothing in flight it queues like any request.
        """
        requests = batch.requests
        total = len(requests)
        if self._closed:
            while batch.next < total:
                batch.answers[batch.next] = TransportError("transport is closed")
                batch.next += 1
        while batch.next < total:
            if held:
                held -= 1
            elif self._free_slots > 0 and not self._slot_waiters:
                self._free_slots -= 1
            else:
                break
            index = batch.next
            batch.next += 1
            if not self._start_in(batch, index):
                held += 1
        for _ in range(held):
            self._release_slot()
        if batch.next < total and batch.in_flight == 0 and batch.waiter is None:
            self._queue_for_slot(batch)
        elif batch.next == total and batch.in_flight == 0 and not batch.done.done():
            batch.done.set_result(None)

    def _start_in(self, batch: ExchangeBatch, index: int) -> bool:
        """Put request `index` of the batch on the wire; False when it failed at once."""
        request = batch.requests[index]
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        budget = request.timeout - (loop.time() - batch.started)
        if budget <= 0:
            batch.answers[index] = TransportError(
                f"timed out after {request.timeout}s waiting for a free slot"
            )
            return False
        exchange = self._idle.pop() if self._idle else self._new_exchange(loop)
        try:
            exchange.start(request, request.timeout, None)
            self._multi.add_handle(exchange.handle)
        except (ValueError, pycurl.error) as exc:  # UnicodeEncodeError is a ValueError
            self._recycle(exchange)
            batch.answers[index] = TransportError(
                f"cannot send {request.method} {request.url}: {exc}"
            )
            return False
        exchange.batch = batch
        exchange.index = index
        self._active[exchange.handle] = exchange
        batch.in_flight += 1
        return True

    def _queue_for_slot(self, batch: ExchangeBatch) -> None:
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        waiter: asyncio.Future[None] = loop.create_future()
        self._slot_waiters.append(waiter)
        batch.waiter = waiter
        waiter.add_done_callback(lambda granted: self._slot_granted(batch, granted))
        deadline = batch.started + batch.requests[batch.next].timeout
        batch.timer = loop.call_at(deadline, self._expire_queued, batch)

    def _slot_granted(self, batch: ExchangeBatch, waiter: asyncio.Future[None]) -> None:
        batch.waiter = None
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        if not waiter.cancelled():
            self._pump(batch, 1)

    def _expire_queued(self, batch: ExchangeBatch) -> None:
        """Fail the queued requests whose timeout passed while no slot came."""
        batch.timer = None
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        requests, now = batch.requests, loop.time()
        while batch.next < len(requests) and batch.started + requests[batch.next].timeout <= now:
            timeout = requests[batch.next].timeout
            batch.answers[batch.next] = TransportError(
                f"timed out after {timeout}s waiting for a free slot"
            )
            batch.next += 1
        if batch.next < len(requests):
            deadline = batch.started + requests[batch.next].timeout
            batch.timer = loop.call_at(deadline, self._expire_queued, batch)
            return
        if batch.waiter is not None and not batch.waiter.done():
            batch.waiter.cancel()
        if batch.in_flight == 0 and not batch.done.done():
            batch.done.set_result(None)

    def _cancel_batch(self, batch: ExchangeBatch) -> None:
        """The caller stopped waiting: detach the batch's requests and give their slots back."""
        batch.next = len(batch.requests)
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        if batch.waiter is not None and not batch.waiter.done():
            batch.waiter.cancel()
        for exchange in [e for e in self._active.values() if e.batch is batch]:
            self._abandon(exchange)
            self._release_slot()
        batch.in_flight = 0
