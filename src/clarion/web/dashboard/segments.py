"""Saved segments: list, create, edit (with the live count the compose page uses), delete."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from clarion.api.routes.segments import canonical_filter
from clarion.api.services import Services
from clarion.model.app import App
from clarion.model.audience import parse_audience
from clarion.model.errors import FieldError
from clarion.store import segments as store
from clarion.web.dashboard.access import (
    CheckedForm,
    CurrentViewer,
    DashApp,
    Found,
    NotVisible,
    Viewer,
)
from clarion.web.dashboard.render import page

router = APIRouter()


async def _list_page(
    request: Request,
    app: App,
    who: Viewer,
    found: Services,
    *,
    values: dict[str, str] | None = None,
    error: str = "",
) -> Response:
    now = found.clock.now()
    async with found.database.read() as conn:
        items = await store.list_segments(conn, app.id, after=None, limit=200)
        rows = []
        for segment in items:
            audience = await store.resolve_audience(
                conn, app.id, parse_audience({"segment": segment.id})
            )
            rows.append((segment, await store.count_audience(conn, app.id, audience, now)))
    return page(
        request,
        "segments.html",
        who,
        status_code=422 if error else 200,
        app=app,
        section="segments",
        rows=rows,
        values=values or {"name": "", "filter": ""},
        error=error,
    )


@router.get("/apps/{app_id}/segments")
async def segment_list(
    request: Request, app: DashApp, who: CurrentViewer, found: Found
) -> Response:
    return await _list_page(request, app, who, found)


def _fields(form: CheckedForm) -> tuple[str, str]:
    name, text = form.get("name"), form.get("filter")
    return (name.strip() if isinstance(name, str) else "", text if isinstance(text, str) else "")


@router.post("/apps/{app_id}/segments")
async def segment_create(
    request: Request, app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm
) -> Response:
    name, text = _fields(form)
    try:
        if not name or len(name) > 200:
            raise FieldError("name", "must be 1 to 200 characters")
        canonical = canonical_filter(text, "filter")
        async with found.database.write() as conn:
            await store.create_segment(conn, app.id, name, canonical, found.clock.now())
    except (FieldError, store.SegmentNameTaken) as error:
        message = error.message if isinstance(error, FieldError) else f"{name!r} exists already"
        return await _list_page(
            request, app, who, found, values={"name": name, "filter": text}, error=message
        )
    return RedirectResponse(f"/apps/{app.id}/segments", status_code=303)


@router.get("/apps/{app_id}/segments/{segment_id}")
async def segment_edit(
    request: Request, app: DashApp, who: CurrentViewer, found: Found, segment_id: str
) -> Response:
    async with found.database.read() as conn:
        segment = await store.get_segment(conn, app.id, segment_id)
    if segment is None:
        raise NotVisible
    return page(
        request,
        "segment.html",
        who,
        app=app,
        section="segments",
        segment=segment,
        values={"name": segment.name, "filter": segment.filter},
        error="",
    )


@router.post("/apps/{app_id}/segments/{segment_id}")
async def segment_update(
    request: Request,
    app: DashApp,
    who: CurrentViewer,
    found: Found,
    form: CheckedForm,
    segment_id: str,
) -> Response:
    name, text = _fields(form)
    async with found.database.read() as conn:
        segment = await store.get_segment(conn, app.id, segment_id)
    if segment is None:
        raise NotVisible
    try:
        if not name or len(name) > 200:
            raise FieldError("name", "must be 1 to 200 characters")
        canonical = canonical_filter(text, "filter")
        async with found.database.write() as conn:
            await store.update_segment(
                conn, app.id, segment_id, found.clock.now(), name=name, text=canonical
            )
    except (FieldError, store.SegmentNameTaken) as error:
        message = error.message if isinstance(error, FieldError) else f"{name!r} exists already"
        return page(
            request,
            "segment.html",
            who,
            status_code=422,
            app=app,
            section="segments",
            segment=segment,
            values={"name": name, "filter": text},
            error=message,
        )
    return RedirectResponse(f"/apps/{app.id}/segments", status_code=303)


@router.post("/apps/{app_id}/segments/{segment_id}/delete")
async def segment_delete(
    app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm, segment_id: str
) -> Response:
    async with found.database.write() as conn:
        if not await store.delete_segment(conn, app.id, segment_id):
            raise NotVisible
    return RedirectResponse(f"/apps/{app.id}/segments", status_code=303)
