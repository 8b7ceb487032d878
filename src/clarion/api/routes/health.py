"""Liveness and readiness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from clarion.api.errors import Problem
from clarion.api.services import Services, services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(found: Annotated[Services, Depends(services)]) -> dict[str, str]:
    """The process can reach its store."""
    try:
        await found.database.ping()
    except Exception as exc:
        raise Problem(503, "Service Unavailable", "the store does not answer") from exc
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
async def metrics(found: Annotated[Services, Depends(services)]) -> Response:
    """Prometheus text format: delivery outcomes, provider latency, queue depth and age."""
    body = await found.metrics.render(found.database, found.clock)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
