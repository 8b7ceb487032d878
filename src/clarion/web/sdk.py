"""Serving the Web Push SDK: `/sdk/clarion.js` and `/sdk/clarion-sw.js`.

Why Clarion serves them: a web developer needs exactly these two files, in
the version that matches this server's payload and API. A page may load
`clarion.js` straight from Clarion; the service worker, however, must come
from the page's own origin (browsers register workers same-origin only), so
sites copy `clarion-sw.js` next to their pages, or proxy this URL. Clarion's
own copy is sent with `Service-Worker-Allowed: /` so it may control a whole
origin when the page is served by Clarion itself.

Because the SDK calls the API from other origins, `ApiCors` answers CORS for
`/v1/` only: any origin, no cookies (`Access-Control-Allow-Credentials` is
never sent), so a browser can use a publishable client key and nothing a
cookie authenticates is exposed.
"""

from __future__ import annotations

import hashlib
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from clarion.web import STATIC_DIR

SDK_FILES = {"clarion.js": "clarion.js", "clarion-sw.js": "clarion-sw.js"}
JAVASCRIPT = "text/javascript; charset=utf-8"

router = APIRouter(include_in_schema=False)


@cache
def _read(name: str) -> tuple[bytes, str]:
    body = (STATIC_DIR / "sdk" / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _serve(name: str, request: Request) -> Response:
    body, etag = _read(name)
    headers = {
        "ETag": etag,
        # Browsers re-check a worker script at least daily anyway; a short cache
        # lets a Clarion upgrade reach pages quickly.
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        "Access-Control-Allow-Origin": "*",
    }
    if name == "clarion-sw.js":
        headers["Service-Worker-Allowed"] = "/"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JAVASCRIPT, headers=headers)


@router.get("/sdk/clarion.js")
async def page_script(request: Request) -> Response:
    """The page script: `Clarion.init`, `subscribe`, `unsubscribe`."""
    return _serve("clarion.js", request)


@router.get("/sdk/clarion-sw.js")
async def worker_script(request: Request) -> Response:
    """The service worker: shows pushes, reports `received` and `opened`."""
    return _serve("clarion-sw.js", request)


class ApiCors:
    """CORS for the JSON API (`/v1/...`) only; every other path passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
