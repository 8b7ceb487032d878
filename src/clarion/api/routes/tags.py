"""Bulk tags: set, merge or remove tags on devices chosen by ids or by a filter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from clarion.api.auth import ServerApp
from clarion.api.routes.segments import canonical_filter
from clarion.api.services import Services, services
from clarion.api.validation import Checks
from clarion.model.audience import MAX_LISTED, Audience, AudienceKind
from clarion.model.device import check_tags
from clarion.model.errors import FieldError
from clarion.store.tags import TagChange, change_tags

router = APIRouter(prefix="/v1/apps/{app_id}/devices/tags", tags=["devices"])
Found = Annotated[Services, Depends(services)]


class BulkTags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    devices: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_LISTED, description="device ids"
    )
    filter: str | None = Field(default=None, description="a filter expression")
    set: dict[str, Any] | None = Field(default=None, description="replace all tags with these")
    merge: dict[str, Any] | None = Field(default=None, description="add or overwrite these")
    remove: list[str] | None = Field(default=None, description="delete these tag names")


def _audience(body: BulkTags) -> Audience:
    if (body.devices is None) == (body.filter is None):
        raise FieldError("devices", "give exactly one of devices or filter")
    if body.devices is not None:
        return Audience(AudienceKind.DEVICES, tuple(dict.fromkeys(body.devices)))
    return Audience(AudienceKind.FILTER, (canonical_filter(str(body.filter), "filter"),))


def _change(body: BulkTags) -> TagChange:
    if body.set is None and body.merge is None and body.remove is None:
        raise FieldError("set", "give set, or merge and/or remove")
    if body.set is not None and (body.merge is not None or body.remove is not None):
        raise FieldError("set", "replaces every tag; it cannot be combined with merge or remove")
    checks = Checks()
    clean_set = checks.run(lambda: check_tags(body.set, "set")) if body.set is not None else None
    merge = checks.run(lambda: check_tags(body.merge, "merge")) if body.merge else {}
    for index, name in enumerate(body.remove or ()):
        checks.run(lambda n=name, i=index: check_tags({n: ""}, f"remove.{i}"))  # type: ignore[misc]
    checks.done()
    return TagChange(set=clean_set, merge=merge or {}, remove=tuple(body.remove or ()))


@router.post("")
async def bulk_tags(app: ServerApp, body: BulkTags, found: Found) -> dict[str, int]:
    """Change tags on many devices; answers how many matched and how many changed.

    Devices that would end with more than 64 tags are left as they are and
    counted in `over_limit`.
    """
    audience = _audience(body)
    change = _change(body)
    result = await change_tags(found.database, app.id, audience, change, found.clock.now())
    return {"matched": result.matched, "updated": result.updated, "over_limit": result.over_limit}
