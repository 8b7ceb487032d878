"""Saved segments (named filters, with their current size) and draft audience counts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from clarion.api.auth import ServerApp
from clarion.api.errors import Problem, not_found
from clarion.api.serialize import iso
from clarion.api.services import Services, services
from clarion.model.audience import Audience, AudienceKind, parse_audience
from clarion.model.errors import FieldError
from clarion.model.filter import FilterSyntaxError, parse_filter, print_filter
from clarion.store import segments as store
from clarion.store.pagination import check_limit, decode_after, page_json

router = APIRouter(prefix="/v1/apps/{app_id}/segments", tags=["segments"])
audience_router = APIRouter(prefix="/v1/apps/{app_id}/audience", tags=["segments"])
Found = Annotated[Services, Depends(services)]


class CreateSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    filter: str = Field(description="a filter expression; see the README's filter language")


class PatchSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    filter: str | None = None


class CountAudience(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: dict[str, Any] = Field(description="any audience form of a notification")


def canonical_filter(text: str, field: str) -> str:
    """The filter in canonical form; a 422 on `field` naming the position otherwise."""
    try:
        return print_filter(parse_filter(text))
    except FilterSyntaxError as error:
        raise FieldError(field, str(error)) from error


def segment_json(segment: store.Segment, count: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": segment.id,
        "name": segment.name,
        "filter": segment.filter,
        "created_at": iso(segment.created_at),
        "updated_at": iso(segment.updated_at),
    }
    if count is not None:
        body["count"] = count
    return body


def _taken(name: str) -> Problem:
    return Problem(409, "Conflict", f"a segment named {name!r} exists already")


@router.post("", status_code=201)
async def create_segment(app: ServerApp, body: CreateSegment, found: Found) -> dict[str, Any]:
    text = canonical_filter(body.filter, "filter")
    try:
        async with found.database.write() as conn:
            segment = await store.create_segment(conn, app.id, body.name, text, found.clock.now())
    except store.SegmentNameTaken as exc:
        raise _taken(body.name) from exc
    return segment_json(segment)


@router.get("")
async def list_segments(
    app: ServerApp, found: Found, limit: int | None = None, cursor: str | None = None
) -> dict[str, Any]:
    size = check_limit(limit)
    after = decode_after(cursor)
    async with found.database.read() as conn:
        items = await store.list_segments(conn, app.id, after=after, limit=size + 1)
    return page_json(items, size, lambda item: item.id, segment_json)


@router.get("/{segment_id}")
async def get_segment(app: ServerApp, segment_id: str, found: Found) -> dict[str, Any]:
    """The segment and `count`: how many devices match it now (whatever their consent)."""
    async with found.database.read() as conn:
        segment = await store.get_segment(conn, app.id, segment_id)
        if segment is None:
            raise not_found("segment")
        audience = await store.resolve_audience(conn, app.id, _segment_audience(segment_id))
        count = await store.count_audience(conn, app.id, audience, found.clock.now())
    return segment_json(segment, count)


def _segment_audience(segment_id: str) -> Audience:
    return parse_audience({"segment": segment_id})


@router.patch("/{segment_id}")
async def patch_segment(
    app: ServerApp, segment_id: str, body: PatchSegment, found: Found
) -> dict[str, Any]:
    text = canonical_filter(body.filter, "filter") if body.filter is not None else None
    try:
        async with found.database.write() as conn:
            segment = await store.update_segment(
                conn, app.id, segment_id, found.clock.now(), name=body.name, text=text
            )
    except store.SegmentNameTaken as exc:
        raise _taken(body.name or "") from exc
    if segment is None:
        raise not_found("segment")
    return segment_json(segment)


@router.delete("/{segment_id}", status_code=204)
async def delete_segment(app: ServerApp, segment_id: str, found: Found) -> Response:
    """Delete; notifications already accepted for it keep the filter they were sent with."""
    async with found.database.write() as conn:
        deleted = await store.delete_segment(conn, app.id, segment_id)
    if not deleted:
        raise not_found("segment")
    return Response(status_code=204)


async def resolve_for_request(found: Services, app_id: str, audience: Audience) -> Audience:
    """Check a filter's syntax and a segment's existence: 422s naming `audience.*`."""
    if audience.kind is AudienceKind.FILTER:
        canonical_filter(audience.values[0], "audience.filter")
        return audience
    async with found.database.read() as conn:
        try:
            return await store.resolve_audience(conn, app_id, audience)
        except LookupError as exc:
            raise FieldError("audience.segment", "is not a segment of this app") from exc


@audience_router.post("/count")
async def count_audience(app: ServerApp, body: CountAudience, found: Found) -> dict[str, int]:
    """The size of a draft audience: devices it selects now, whatever their consent."""
    audience = await resolve_for_request(found, app.id, parse_audience(body.audience))
    async with found.database.read() as conn:
        count = await store.count_audience(conn, app.id, audience, found.clock.now())
    return {"count": count}
