"""Provider credentials of an app: write, read redacted, delete; the VAPID public key.

Credentials are validated on write (`clarion.providers.registry`), every
outbound URL in them is checked against the outbound rules including DNS
(`resolve_public`), then sealed under the settings' secret key
(`clarion.store.sealing`) before they reach the store. Reads return only the
redacted public view, the state (`ok` or `failing` and the last error) and
the expiry: nothing here ever answers or logs a secret.

An unknown provider name in the URL is a 422 naming `provider`, like every
other bad input.

`check_device_url` is the registration-time check of the URLs devices bring
(Web Push endpoints, WNS channel URIs), used by the devices router.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response

from clarion.api.auth import ClientApp, ServerApp
from clarion.api.errors import field_problem, not_found
from clarion.api.services import Services, services
from clarion.model.platform import Platform
from clarion.providers.outbound import OutboundPolicy, Resolver, resolve_public
from clarion.providers.registry import InvalidCredentialBody, validate_credentials
from clarion.store import credentials as credential_store
from clarion.store.credentials import StoredCredential
from clarion.store.sealing import Sealer

router = APIRouter(prefix="/v1/apps/{app_id}", tags=["providers"])
Found = Annotated[Services, Depends(services)]


def outbound_policy(found: Services) -> OutboundPolicy:
    """The deployment's outbound rules (loopback only with the private-endpoints setting)."""
    return OutboundPolicy(allow_private=found.settings.allow_private_endpoints)


def resolver(request: Request) -> Resolver:
    """The DNS resolver for registration checks (`Services.resolver`)."""
    found: Resolver = request.app.state.services.resolver
    return found


def credential_json(stored: StoredCredential, warnings: list[str] | None = None) -> dict[str, Any]:
    """A credential as the API shows it: public view and state, never a secret."""
    answer: dict[str, Any] = {
        "provider": stored.provider,
        "configuration": dict(stored.public),
        "status": stored.status,
        "last_error": stored.last_error,
        "last_error_at": stored.last_error_at.isoformat() if stored.last_error_at else None,
        "expires_at": stored.expires_at.isoformat() if stored.expires_at else None,
        "version": stored.version,
        "created_at": stored.created_at.isoformat(),
        "updated_at": stored.updated_at.isoformat(),
    }
    if "vapid_public_key" in stored.public:
        answer["vapid_public_key"] = stored.public["vapid_public_key"]
    if warnings is not None:
        answer["warnings"] = warnings
    return answer


@router.put("/providers/{provider}")
async def put_provider(
    app: ServerApp,
    provider: Platform,
    request: Request,
    found: Found,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Set the app's credentials for `provider`; the next batch uses them."""
    policy = outbound_policy(found)
    try:
        validated = validate_credentials(provider, body, policy=policy, now=found.clock.now())
    except InvalidCredentialBody as exc:
        raise field_problem(exc.errors) from None
    for field, url in validated.urls:
        await resolve_public(url, policy, field=field, resolver=resolver(request), allow_list=False)
    async with found.database.write() as conn:
        stored = await credential_store.put_credential(
            conn,
            Sealer(found.settings.secret_key),
            app.id,
            provider.value,
            validated.config,
            public=validated.public,
            expires_at=validated.expires_at,
            now=found.clock.now(),
        )
    return credential_json(stored, validated.warnings)


@router.get("/providers")
async def list_providers(app: ServerApp, found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        stored = await credential_store.list_credentials(conn, app.id)
    return {"items": [credential_json(item) for item in stored], "next_cursor": None}


@router.get("/providers/{provider}")
async def get_provider(app: ServerApp, provider: Platform, found: Found) -> dict[str, Any]:
    async with found.database.read() as conn:
        stored = await credential_store.get_credential(conn, app.id, provider.value)
    if stored is None:
        raise not_found(f"{provider.value} credential")
    return credential_json(stored)


@router.delete("/providers/{provider}", status_code=204)
async def delete_provider(app: ServerApp, provider: Platform, found: Found) -> Response:
    async with found.database.write() as conn:
        deleted = await credential_store.delete_credential(conn, app.id, provider.value)
    if not deleted:
        raise not_found(f"{provider.value} credential")
    return Response(status_code=204)


@router.get("/webpush/public-key")
async def webpush_public_key(app: ClientApp, found: Found) -> dict[str, Any]:
    """The VAPID public key browsers subscribe with (`applicationServerKey`)."""
    async with found.database.read() as conn:
        stored = await credential_store.get_credential(conn, app.id, Platform.WEBPUSH.value)
    if stored is None:
        raise not_found("webpush credential")
    return {"vapid_public_key": stored.public["vapid_public_key"]}


async def check_device_url(
    request: Request, found: Services, app_id: str, platform: Platform, url: str
) -> None:
    """Refuse (422) a Web Push endpoint or WNS channel URI Clarion must not send to.

    The app's `allowed_hosts` (from its webpush or wns credential) apply when set.
    """
    if platform not in (Platform.WEBPUSH, Platform.WNS):
        return
    async with found.database.read() as conn:
        stored = await credential_store.get_credential(conn, app_id, platform.value)
    hosts = stored.public.get("allowed_hosts") if stored is not None else None
    policy = outbound_policy(found).with_hosts(hosts)
    field = "token.endpoint" if platform is Platform.WEBPUSH else "token"
    await resolve_public(url, policy, field=field, resolver=resolver(request))
