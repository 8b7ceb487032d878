"""Export of the consent ledger, streamed as JSON lines or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from clarion.api.auth import ServerApp
from clarion.api.serialize import consent_event_json
from clarion.api.services import Services, services
from clarion.model.errors import FieldError
from clarion.store.consent import export_events

router = APIRouter(prefix="/v1/apps/{app_id}", tags=["consent"])
Found = Annotated[Services, Depends(services)]

CSV_COLUMNS = [
    "id",
    "device_id",
    "platform",
    "subject_hash",
    "old_status",
    "new_status",
    "source",
    "text_version",
    "client_time",
    "server_time",
    "ip",
    "user_agent",
]


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise FieldError(field, "must carry a time zone, e.g. 2026-01-01T00:00:00Z")
    return value


@router.get("/consent-log")
async def consent_log(
    app: ServerApp,
    request: Request,
    found: Found,
    format: Literal["jsonl", "csv"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """Every consent event of the app, oldest first (`format` or `Accept: text/csv`)."""
    _aware(since, "since")
    _aware(until, "until")
    chosen = format or ("csv" if "text/csv" in request.headers.get("accept", "") else "jsonl")
    events = export_events(found.database, app.id, since=since, until=until)
    if chosen == "csv":
        return StreamingResponse(_csv(events), media_type="text/csv; charset=utf-8")
    return StreamingResponse(_jsonl(events), media_type="application/x-ndjson")


async def _jsonl(events: AsyncIterator[object]) -> AsyncIterator[bytes]:
    async for event in events:
        yield (json.dumps(consent_event_json(event)) + "\n").encode()  # type: ignore[arg-type]


async def _csv(events: AsyncIterator[object]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    async for event in events:
        writer.writerow(consent_event_json(event))  # type: ignore[arg-type]
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
