"""Rendering dashboard pages: one Jinja2 environment, autoescaped, and strict headers.

Pages carry a Content-Security-Policy that allows only this origin's scripts
and styles (no inline script or style anywhere in the templates), so text
coming from devices or notifications cannot run as script even if escaping
were ever missed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from clarion.web import STATIC_PREFIX, TEMPLATES_DIR
from clarion.web.dashboard.access import Viewer

STATIC_URL = f"{STATIC_PREFIX}/dashboard"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(moment: datetime | None) -> str:
    """An instant as people read it in a table: UTC to the second."""
    if moment is None:
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["when"] = when
_env.globals["static"] = STATIC_URL


def page(
    request: Request,
    template: str,
    who: Viewer | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A dashboard page for `who` (None on the sign-in form)."""
    context.setdefault("app", None)
    context.setdefault("apps", [])
    context.setdefault("section", "")
    body = _env.get_template(f"dashboard/{template}").render(
        request_path=request.url.path, who=who, **context
    )
    return HTMLResponse(body, status_code=status_code, headers=HEADERS)
