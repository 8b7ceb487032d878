from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clarion.emulators.server import EmulatorServer
from clarion.providers.base import HttpRequest
from clarion.providers.httpx_transport import HttpxTransport


async def _version(request: Request) -> JSONResponse:
    return JSONResponse({"http_version": request.scope["http_version"]})


APP = Starlette(routes=[Route("/", _version)])


async def test_tls_emulator_speaks_http2_to_a_client_trusting_its_ca() -> None:
    async with EmulatorServer(APP, tls=True) as server:
        transport = HttpxTransport(ca_file=server.ca_file)
        try:
            response = await transport.request(HttpRequest("GET", server.url + "/"))
        finally:
            await transport.aclose()
    assert server.url.startswith("https://127.0.0.1:")
    assert response.status == 200
    assert response.body == b'{"http_version":"2"}'


async def test_two_emulators_get_different_ports() -> None:
    async with EmulatorServer(APP) as first, EmulatorServer(APP) as second:
        assert first.port != second.port
