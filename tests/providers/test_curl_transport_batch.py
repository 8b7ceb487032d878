"""CurlTransport.request_all: a batch of requests in one call, over real sockets (hypercorn)."""

from __future__ import annotations

import asyncio
import json

import pytest

from clarion.emulators.server import EmulatorServer
from clarion.providers.base import HttpRequest, HttpResponse, TransportError
from clarion.providers.curl_transport import CurlTransport
from tests.providers.test_curl_transport import _get, _Site, server, site

__all__ = ["server", "site"]  # fixtures shared with test_curl_transport


def _echo(server: EmulatorServer, index: int, timeout: float = 5.0) -> HttpRequest:
    body = f"push {index}".encode()
    return HttpRequest("POST", server.url + "/echo", (("x-token", str(index)),), body, timeout)


async def test_every_answer_comes_back_in_the_order_of_the_requests(
    server: EmulatorServer,
) -> None:
    transport = CurlTransport(ca_file=server.ca_file, max_concurrency=7)
    try:
        answers = await transport.request_all([_echo(server, i) for i in range(50)])
    finally:
        await transport.aclose()
    assert all(isinstance(answer, HttpResponse) for answer in answers)
    echoed = [json.loads(answer.body) for answer in answers if isinstance(answer, HttpResponse)]
    assert [bytes.fromhex(e["body"]).decode() for e in echoed] == [f"push {i}" for i in range(50)]
    assert [e["x_token"] for e in echoed] == [str(i) for i in range(50)]


async def test_one_failed_request_is_its_error_and_the_others_still_answer(
    site: _Site, server: EmulatorServer
) -> None:
    bad = HttpRequest("GET", server.url + "/echo", (("x-token", "a\r\nx-admin: 1"),))
    unreachable = HttpRequest("GET", "https://127.0.0.1:1/echo", timeout=2.0)
    transport = CurlTransport(ca_file=server.ca_file)
    try:
        answers = await transport.request_all(
            [_get(server, "/echo"), bad, unreachable, _get(server, "/status/410")]
        )
    finally:
        await transport.aclose()
    assert isinstance(answers[0], HttpResponse) and answers[0].status == 200
    assert isinstance(answers[1], TransportError) and "cannot send GET" in str(answers[1])
    assert isinstance(answers[2], TransportError)
    assert isinstance(answers[3], HttpResponse) and answers[3].status == 410
    assert site.hits == ["/echo", "/status/410"]


async def test_a_batch_shares_the_slots_with_single_requests(server: EmulatorServer) -> None:
    transport = CurlTransport(ca_file=server.ca_file, max_concurrency=2)
    try:
        batch = asyncio.ensure_future(transport.request_all([_echo(server, i) for i in range(20)]))
        singles = [transport.request(_echo(server, 100 + i)) for i in range(5)]
        answers, *single_answers = await asyncio.gather(batch, *singles)
        assert transport._free_slots == 2
    finally:
        await transport.aclose()
    assert [a.status for a in answers if isinstance(a, HttpResponse)] == [200] * 20
    assert [a.status for a in single_answers] == [200] * 5


async def test_queued_requests_fail_once_their_timeout_passed_without_a_slot(
    site: _Site, server: EmulatorServer
) -> None:
    transport = CurlTransport(ca_file=server.ca_file, max_concurrency=1)
    try:
        slow = asyncio.ensure_future(transport.request(_get(server, "/slow", timeout=1.0)))
        await asyncio.sleep(0.05)
        answers = await transport.request_all([_get(server, "/echo", timeout=0.2)] * 3)
        site.release.set()
        assert (await slow).status == 200
        assert (await transport.request(_get(server, "/echo"))).status == 200
    finally:
        await transport.aclose()
    assert all(isinstance(a, TransportError) and "free slot" in str(a) for a in answers)


async def test_cancelled_batch_gives_its_slots_back(server: EmulatorServer) -> None:
    transport = CurlTransport(ca_file=server.ca_file, max_concurrency=3)
    try:
        batch = asyncio.ensure_future(
            transport.request_all([_get(server, "/slow", timeout=5.0)] * 10)
        )
        await asyncio.sleep(0.1)
        batch.cancel()
        response = await transport.request(_get(server, "/echo"))
        assert transport._free_slots == 3
    finally:
        await transport.aclose()
    assert batch.cancelled()
    assert response.status == 200


async def test_closing_fails_a_batch_in_flight(server: EmulatorServer) -> None:
    transport = CurlTransport(ca_file=server.ca_file, max_concurrency=2)
    batch = asyncio.ensure_future(transport.request_all([_get(server, "/slow")] * 4))
    await asyncio.sleep(0.1)
    await transport.aclose()
    answers = await asyncio.wait_for(batch, 2.0)
    assert len(answers) == 4
    assert all(isinstance(answer, TransportError) for answer in answers)


async def test_an_empty_batch_sends_nothing(site: _Site, server: EmulatorServer) -> None:
    transport = CurlTransport(ca_file=server.ca_file)
    try:
        assert await transport.request_all([]) == []
    finally:
        await transport.aclose()
    assert site.hits == []


@pytest.mark.parametrize("way", ["request", "request_all"])
async def test_a_request_that_waited_for_a_slot_still_gets_its_whole_timeout_on_the_wire(
    site: _Site, server: EmulatorServer, way: str
) -> None:
    # Given up after it was sent, a push may have arrived: its retry would push twice.
    # So the time spent queueing for a slot is not taken from the time to answer.
    transport = CurlTransport(ca_file=server.ca_file, max_concurrency=1)
    late = _get(server, "/slow", timeout=1.0)
    try:
        blocking = asyncio.ensure_future(transport.request(_get(server, "/slow", timeout=0.5)))
        await asyncio.sleep(0.05)
        if way == "request":
            answer: object = asyncio.ensure_future(transport.request(late))
        else:
            answer = asyncio.ensure_future(transport.request_all([late]))
        await asyncio.sleep(1.25)  # past 1.0 s from queueing, before 1.0 s on the wire
        site.release.set()
        with pytest.raises(TransportError):
            await blocking
        answered = await answer  # type: ignore[misc]
    finally:
        await transport.aclose()
    [response] = answered if isinstance(answered, list) else [answered]
    assert isinstance(response, HttpResponse) and response.status == 200
