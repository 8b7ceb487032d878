"""Composing a send: form → confirmation (with the audience size) → accepted.

The form is turned into the API's JSON request body and goes through the
API's own validation (`notifications._validate`) at both steps, so the
dashboard can send nothing the API would refuse. The confirmation carries
the body and a one-time idempotency key, so a double click sends once.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from clarion.api.errors import Problem
from clarion.api.routes.notifications import _validate
from clarion.api.routes.segments import resolve_for_request
from clarion.api.services import Services
from clarion.model.app import App
from clarion.model.audience import parse_audience
from clarion.model.errors import FieldError
from clarion.store import notifications as notification_store
from clarion.store import segments as segment_store
from clarion.web.dashboard.access import (
    CheckedForm,
    CurrentViewer,
    DashApp,
    Found,
    ScriptViewer,
    Viewer,
)
from clarion.web.dashboard.render import page

router = APIRouter()
AUDIENCE_KINDS = ("filter", "users", "topic", "segment", "all")
WHEN = ("now", "at", "local")
QUIET = ("defer", "drop", "ignore")
_SPLIT = re.compile(r"[\s,]+")
_ZONED = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def audience_from(form: FormData) -> dict[str, Any]:
    """The API audience for the picker's fields (only the chosen kind counts)."""
    kind = _text(form, "audience_kind")
    if kind == "users":
        return {"users": [u for u in _SPLIT.split(_text(form, "users")) if u]}
    if kind in ("topic", "segment", "filter"):
        return {kind: _text(form, kind)}
    if kind == "all":
        return {"all": True}
    return {"filter": _text(form, "filter")}


def request_from(form: FormData) -> dict[str, Any]:
    """The API request body the form describes; empty fields are left out."""
    content = {
        name: _text(form, name)
        for name in ("title", "subtitle", "body", "image", "url")
        if _text(form, name)
    }
    body: dict[str, Any] = {"audience": audience_from(form), "content": content}
    if _text(form, "category"):
        body["category"] = _text(form, "category")
    schedule: dict[str, Any] = {"quiet_hours": _text(form, "quiet_hours") or "defer"}
    when = _text(form, "when")
    send_at = _text(form, "send_at")
    if when in ("at", "local") and send_at:
        schedule["send_at"] = send_at if _ZONED.search(send_at) else send_at + "Z"
    if when == "at" and not send_at:
        schedule["send_at"] = ""
    if when == "local":
        schedule["local_time"] = _text(form, "local_time")
    body["schedule"] = schedule
    return body


async def _segments(found: Services, app: App) -> list[segment_store.Segment]:
    async with found.database.read() as conn:
        return await segment_store.list_segments(conn, app.id, after=None, limit=200)


async def _form_page(
    request: Request,
    app: App,
    who: Viewer,
    found: Services,
    values: dict[str, str],
    errors: dict[str, str],
) -> Response:
    return page(
        request,
        "compose.html",
        who,
        status_code=422 if errors else 200,
        app=app,
        section="compose",
        values=values,
        errors=errors,
        segments=await _segments(found, app),
        kinds=AUDIENCE_KINDS,
        quiet_modes=QUIET,
    )


DEFAULTS = {"audience_kind": "filter", "when": "now", "quiet_hours": "defer"}


@router.get("/apps/{app_id}/compose")
async def compose_form(
    request: Request, app: DashApp, who: CurrentViewer, found: Found
) -> Response:
    return await _form_page(request, app, who, found, dict(DEFAULTS), {})


def _errors_of(problem: Problem) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in problem.errors:
        found.setdefault(error["field"], error["message"])
    return found or {"request": problem.detail or problem.title}


@router.post("/apps/{app_id}/compose")
async def confirm(
    request: Request, app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm
) -> Response:
    """Validate as the API does, then show exactly who will get it before anything is sent."""
    body = request_from(form)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    try:
        spec = await _validate(app, body, found)
    except Problem as problem:
        return await _form_page(request, app, who, found, values, _errors_of(problem))
    except FieldError as error:
        return await _form_page(request, app, who, found, values, {error.field: error.message})
    async with found.database.read() as conn:
        count = await segment_store.count_audience(conn, app.id, spec.audience, found.clock.now())
    return page(
        request,
        "confirm.html",
        who,
        app=app,
        section="compose",
        count=count,
        body=body,
        body_json=json.dumps(body),
        idempotency_key=secrets.token_urlsafe(16),
        spec=spec,
    )


@router.post("/apps/{app_id}/compose/send")
async def send(
    request: Request, app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm
) -> Response:
    """Accept the confirmed request; a repeated submit lands on the same notification."""
    try:
        body = json.loads(_text(form, "request"))
    except ValueError:
        body = None
    key = _text(form, "idempotency_key")[:255] or secrets.token_urlsafe(16)
    try:
        spec = await _validate(app, body, found)
    except Problem as problem:
        values = dict(DEFAULTS)
        return await _form_page(request, app, who, found, values, _errors_of(problem))
    now = found.clock.now()
    new_id = notification_store.new_notification_id()
    async with found.database.write() as conn:
        digest = notification_store.request_hash(body)
        claimed = await notification_store.claim_idempotency_key(
            conn, app.id, f"dashboard:{key}", digest, new_id, now
        )
        if claimed:
            await notification_store.create_notification(
                conn, app.id, spec, now, notification_id=new_id
            )
        else:
            hit = await notification_store.find_idempotent(conn, app.id, f"dashboard:{key}", now)
            new_id = hit.notification_id if hit else new_id
    if claimed:
        found.on_enqueue()
    return RedirectResponse(f"/apps/{app.id}/notifications/{new_id}", status_code=303)


@router.post("/apps/{app_id}/audience-count.json")
async def live_count(request: Request, app: DashApp, who: ScriptViewer, found: Found) -> Response:
    """The compose and segment pages' live count: the API's count, for the session."""
    try:
        raw = await request.json()
        audience = parse_audience(raw.get("audience") if isinstance(raw, dict) else None)
        resolved = await resolve_for_request(found, app.id, audience)
    except FieldError as error:
        return JSONResponse({"error": error.message, "field": error.field}, status_code=422)
    except ValueError:
        return JSONResponse({"error": "send JSON", "field": "body"}, status_code=422)
    async with found.database.read() as conn:
        count = await segment_store.count_audience(conn, app.id, resolved, found.clock.now())
    return JSONResponse({"count": count})
