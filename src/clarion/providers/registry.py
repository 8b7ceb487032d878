"""The one place that knows every provider: credential bodies in, providers out.

`validate_credentials` turns a `PUT /v1/apps/{app}/providers/{provider}` body
into `ValidatedCredentials`: the configuration to seal, a public view with
every secret replaced by `"[redacted]"`, warnings (a certificate expiring
within 30 days), the expiry date, and the outbound URLs the caller must still
resolve (`resolve_public`). Every bad field raises `InvalidCredentialBody`
naming each field (`private_key`, `service_account.private_key`,
`certificate`, `subject`, `endpoint`...), without quoting any value.

`build_provider` turns an opened configuration back into a `Provider` with
its own transport from `transport_factory`, guarded by the outbound policy at
connect time; the Web Push and WNS providers are wrapped in `GuardedProvider`
so each device URL is checked before it is used. Close a provider with
`await provider.transport.aclose()` (APNs certificate files are deleted then).

Adding a platform: a validator in `credential_bodies` and a builder here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from clarion.clock import Clock
from clarion.model.platform import Platform
from clarion.providers.adm import ADM_ENDPOINT, ADM_TOKEN_URL, AdmCredentials, AdmProvider
from clarion.providers.apns import ApnsProvider
from clarion.providers.apns_auth import (
    ApnsCertificateCredentials,
    ApnsEnvironment,
    ApnsTokenCredentials,
    write_client_certificate,
)
from clarion.providers.base import (
    HttpRequest,
    HttpResponse,
    Provider,
    Transport,
)
from clarion.providers.blackberry import BlackBerryCredentials, BlackBerryProvider
from clarion.providers.credential_bodies import ValidatedCredentials, validate_credentials
from clarion.providers.credential_checks import REDACTED, InvalidCredentialBody
from clarion.providers.fcm import FcmCredentials, FcmProvider
from clarion.providers.hms import HmsCredentials, HmsProvider
from clarion.providers.outbound import GuardedProvider, OutboundPolicy, address_guard
from clarion.providers.webpush import WebPushCredentials, WebPushProvider
from clarion.providers.wns import WNS_TOKEN_URL, WnsCredentials, WnsProvider

__all__ = [
    "REDACTED",
    "InvalidCredentialBody",
    "TransportFactory",
    "ValidatedCredentials",
    "build_provider",
    "validate_credentials",
]

WNS_HOSTS = frozenset({"*.notify.windows.com"})


class TransportFactory(Protocol):
    """Makes the transport of one provider (one per app and provider)."""

    def __call__(
        self,
        *,
        client_cert: tuple[Path, Path] | None = None,
        address_guard: Callable[[str], bool] | None = None,
    ) -> Transport: ...


class _CertificateFilesTransport:
    """A transport that deletes the APNs client-certificate files when closed."""

    def __init__(self, inner: Transport, directory: Path) -> None:
        self.inner = inner
        self.directory = directory

    async def request(self, request: HttpRequest) -> HttpResponse:
        return await self.inner.request(request)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def build_provider(
    platform: Platform | str,
    config: Mapping[str, Any],
    *,
    transport_factory: TransportFactory,
    clock: Clock,
    policy: OutboundPolicy | None = None,
) -> Provider:
    """A ready provider for an opened configuration; `InvalidCredentials` if unusable."""
    policy = policy or OutboundPolicy()
    guard = address_guard(policy)
    platform = Platform(platform)
    if platform is Platform.APNS:
        return _build_apns(config, transport_factory, guard, clock)
    transport = transport_factory(client_cert=None, address_guard=guard)
    if platform is Platform.BLACKBERRY:
        credentials = BlackBerryCredentials.from_config(config)
        return BlackBerryProvider(transport, credentials, clock=clock)
    if platform is Platform.FCM:
        return FcmProvider(transport, FcmCredentials.from_config(config), clock=clock)
    if platform is Platform.HMS:
        return HmsProvider(transport, HmsCredentials.from_config(config), clock=clock)
    if platform is Platform.ADM:
        adm = AdmCredentials(
            config["client_id"],
            config["client_secret"],
            token_url=config.get("token_url") or ADM_TOKEN_URL,
            endpoint=config.get("endpoint") or ADM_ENDPOINT,
        )
        return AdmProvider(transport, adm, clock=clock)
    hosts = config.get("allowed_hosts")
    if platform is Platform.WEBPUSH:
        webpush = WebPushCredentials(config["vapid_private_key"], config["subject"])
        inner: Provider = WebPushProvider(webpush, transport, clock=clock)
        return GuardedProvider(inner, policy.with_hosts(hosts))
    wns = WnsCredentials(
        config["client_id"], config["client_secret"], config.get("token_url") or WNS_TOKEN_URL
    )
    if hosts is None and not policy.allow_private:
        hosts = WNS_HOSTS
    return GuardedProvider(WnsProvider(transport, wns, clock=clock), policy.with_hosts(hosts))


def _build_apns(
    config: Mapping[str, Any],
    transport_factory: TransportFactory,
    guard: Callable[[str], bool],
    clock: Clock,
) -> Provider:
    environment = ApnsEnvironment(config.get("environment", "production"))
    endpoint = config.get("endpoint")
    if config.get("auth") == "certificate":
        credentials = ApnsCertificateCredentials(
            config["certificate"], config["private_key"], config["bundle_id"], environment
        )
        paths = write_client_certificate(credentials)
        inner = transport_factory(client_cert=paths, address_guard=guard)
        transport: Transport = _CertificateFilesTransport(inner, paths[0].parent)
        return ApnsProvider(credentials, transport, clock=clock, endpoint=endpoint)
    token = ApnsTokenCredentials(
        config["key_id"], config["team_id"], config["private_key"], config["bundle_id"], environment
    )
    transport = transport_factory(client_cert=None, address_guard=guard)
    return ApnsProvider(token, transport, clock=clock, endpoint=endpoint)


def curl_transport_factory(ca_file: Path | None = None, **options: Any) -> TransportFactory:
    """Builds `CurlTransport`s trusting `ca_file` (`CLARION_CA_FILE`) too."""
    from clarion.providers.curl_transport import CurlTransport

    def make(
        *,
        client_cert: tuple[Path, Path] | None = None,
        address_guard: Callable[[str], bool] | None = None,
    ) -> Transport:
        return CurlTransport(
            ca_file=ca_file, client_cert=client_cert, address_guard=address_guard, **options
        )

    return make
