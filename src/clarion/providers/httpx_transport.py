"""A `Transport` on httpx: simple and correct, HTTP/1.1 or HTTP/2.

It is the reference transport the faster pycurl one is measured against, and
it suits low-volume services with many origins (webhooks, Web Push).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from clarion.providers.base import HttpRequest, HttpResponse, TransportError


class HttpxTransport:
    """One pooled httpx client; redirects are never followed."""

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        http2: bool = True,
        max_connections: int = 100,
        client_cert: tuple[Path, Path] | None = None,
    ) -> None:
        context = ssl.create_default_context()
        if ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
        if client_cert is not None:
            context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
        self._client = httpx.AsyncClient(
            verify=context,
            http2=http2,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def request(self, request: HttpRequest) -> HttpResponse:
        try:
            response = await self._client.request(
                request.method,
                request.url,
                headers=list(request.headers),
                content=request.body,
                timeout=request.timeout,
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return HttpResponse(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=response.content,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
