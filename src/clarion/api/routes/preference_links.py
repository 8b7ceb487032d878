"""Signed links to a user's preference center, asked for by the app's server.

Why the server key only: the link lets whoever holds it change the user's
preferences and withdraw consent, so only the app's backend (which knows who
its user is) may mint one. The link is stateless (see `clarion.web.links`):
nothing is stored, and it stops working at `expires_at`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from clarion.api.auth import ServerApp
from clarion.api.serialize import iso
from clarion.api.services import Services, services
from clarion.api.validation import Checks
from clarion.model.device import check_user_id
from clarion.web.links import DEFAULT_TTL, MAX_TTL, MIN_TTL, LinkSigner

router = APIRouter(prefix="/v1/apps/{app_id}/users", tags=["users"])
Found = Annotated[Services, Depends(services)]


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl: int = Field(
        default=DEFAULT_TTL,
        ge=MIN_TTL,
        le=MAX_TTL,
        description="seconds the link stays valid (60 s to 90 days; a week by default)",
    )


@router.post("/{user_id}/preference-link")
async def create_preference_link(
    app: ServerApp,
    user_id: str,
    request: Request,
    found: Found,
    body: Annotated[LinkRequest | None, Body()] = None,
) -> dict[str, Any]:
    """A URL of `GET /p/{token}` for this user, and when it expires."""
    checks = Checks()
    checks.run(lambda: check_user_id(user_id))
    checks.done()
    ttl = (body or LinkRequest()).ttl
    signer = LinkSigner(found.settings.secret_key)
    token = signer.sign(app.id, user_id, found.clock.now(), ttl)
    link = signer.verify(token, found.clock.now())
    base = str(request.base_url).rstrip("/")
    return {"url": f"{base}/p/{quote(token)}", "expires_at": iso(link.expires_at)}
