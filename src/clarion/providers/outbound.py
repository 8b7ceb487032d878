"""Outbound safety: where Clarion agrees to open connections.

Why: Web Push endpoints and WNS channel URIs are URLs that clients hand to
Clarion, and `endpoint`/`token_url` overrides are URLs an app's server key
hands to it. Unchecked, any of them could aim Clarion's POSTs at internal
services (the cloud metadata service at 169.254.169.254, an admin panel on
10.0.0.5, a database on localhost): server-side request forgery.

Three layers, each cheap:

1. `check_endpoint_url(url, policy)` (no I/O): `https` only, no user-info,
   the default port, a host name or a public IP literal, optionally on the
   app's allow-list of push-service hosts. IP literals in odd spellings
   (`https://2130706433`, `https://0x7f.1`) are decoded and classified too.
2. `resolve_public(host, policy)` at registration time: every DNS answer
   must be an allowed address. A name that does not resolve is let through
   (it cannot be connected to; layer 3 judges whatever it resolves to later).
3. `address_guard(policy)` for `CurlTransport(address_guard=...)`: the IP of
   every new connection is checked again at connect time, because the DNS
   answer may have changed since registration (DNS rebinding). The
   transports never follow redirects and cap response bodies.

`OutboundPolicy.allow_private` (`CLARION_ALLOW_PRIVATE_ENDPOINTS=1`, the demo)
additionally allows loopback addresses and `localhost`, on any port, so the
emulators work. Link-local (metadata), private, shared (CGNAT), unique-local,
multicast and reserved addresses are never allowed.

`GuardedProvider` wraps the providers that push to per-device URLs (Web Push,
WNS): before each push the device's URL is checked with layer 1, so a device
stored while the setting was on gets `Rejected` once it is off, without any
connection being opened.

Exceptions: `EndpointRefused` is a `FieldError` (the API answers 422 naming
the field); its message names the rule, never a secret.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import SplitResult, urlsplit

from clarion.model.errors import FieldError
from clarion.model.message import Message, Recipient
from clarion.model.outcome import Outcome, Rejected
from clarion.model.platform import Platform
from clarion.providers.base import HttpRequest, HttpResponse, Provider

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""`(host, port) -> [ip, ...]`: how `resolve_public` looks names up (injectable in tests)."""

DNS_TIMEOUT = 3.0
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_HOST_PATTERN = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


class AddressClass(StrEnum):
    """What kind of address an IP is, for the outbound rules."""

    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    SHARED = "shared"
    UNIQUE_LOCAL = "unique-local"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"


_SHARED = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where connections may go, for one deployment and optionally one app."""

    allow_private: bool = False
    """Also allow loopback addresses and `localhost` on any port (emulators, tests)."""
    allowed_hosts: frozenset[str] | None = None
    """When set, per-device URLs must be on one of these hosts (`*.example.com` allowed)."""

    def with_hosts(self, hosts: Iterable[str] | None) -> OutboundPolicy:
        """The same policy restricted to `hosts` (None keeps it unrestricted)."""
        return replace(self, allowed_hosts=frozenset(hosts) if hosts is not None else None)


class EndpointRefused(FieldError):
    """A URL or address the outbound rules refuse; `field` names where it came from."""


def classify_address(address: str | IPAddress) -> AddressClass:
    """The class of an IP address; IPv4-mapped and 6to4-free IPv6 are unwrapped first."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return classify_address(ip.ipv4_mapped)
        if ip.scope_id:
            return AddressClass.LINK_LOCAL
    checks: tuple[tuple[bool, AddressClass], ...] = (
        (ip.is_unspecified, AddressClass.UNSPECIFIED),
        (ip.is_loopback, AddressClass.LOOPBACK),
        (ip.is_link_local, AddressClass.LINK_LOCAL),
        (ip.is_multicast, AddressClass.MULTICAST),
        (ip in _SHARED, AddressClass.SHARED),
        (ip in _UNIQUE_LOCAL, AddressClass.UNIQUE_LOCAL),
        (ip.is_reserved, AddressClass.RESERVED),
        (ip.is_private, AddressClass.PRIVATE),
        (not ip.is_global, AddressClass.RESERVED),
    )
    for matched, kind in checks:
        if matched:
            return kind
    return AddressClass.PUBLIC


def is_public(address: str | IPAddress) -> bool:
    return classify_address(address) is AddressClass.PUBLIC


def address_allowed(address: str | IPAddress, policy: OutboundPolicy) -> bool:
    """Public addresses always; loopback only with `allow_private`; nothing else."""
    try:
        kind = classify_address(address)
    except ValueError:
        return False
    return kind is AddressClass.PUBLIC or (kind is AddressClass.LOOPBACK and policy.allow_private)


def address_guard(policy: OutboundPolicy) -> Callable[[str], bool]:
    """A `CurlTransport` address guard: True when a connection to that IP may open."""

    def guard(address: str) -> bool:
        return address_allowed(address, policy)

    return guard


def literal_address(host: str) -> IPAddress | None:
    """The IP a host names by itself, in any spelling `inet_aton` accepts; None for names."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if ":" in bare or "%" in bare:
        raise ValueError("not a valid IP address")
    labels = bare.rstrip(".").split(".")
    if labels and all(_NUMERIC_LABEL.match(label) for label in labels):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare.rstrip(".")))
        except OSError as exc:
            raise ValueError("a numeric host that is no IPv4 address") from exc
    return None


def is_loopback_name(host: str) -> bool:
    """`localhost` and `*.localhost` always mean this machine (RFC 6761)."""
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def host_matches(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` is one of `patterns` (`*.example.com` matches any subdomain)."""
    name = host.lower().rstrip(".")
    for pattern in patterns:
        wanted = pattern.lower().rstrip(".")
        if wanted.startswith("*."):
            if name.endswith(wanted[1:]):
                return True
        elif name == wanted:
            return True
    return False


def check_host_pattern(pattern: Any, field: str) -> str:
    """A host name or `*.suffix` for an allow-list; `FieldError` otherwise."""
    if not isinstance(pattern, str) or not _HOST_PATTERN.match(pattern.lower()):
        raise FieldError(field, "must be a host name, optionally starting with '*.'")
    return pattern.lower()


def check_endpoint_url(
    url: str, policy: OutboundPolicy, *, field: str = "endpoint", allow_list: bool = True
) -> SplitResult:
    """The parsed URL if Clarion may send to it; `EndpointRefused` naming `field` if not.

    `allow_list=False` skips the per-app host allow-list (it governs device
    URLs, not a provider's own `endpoint` or `token_url`).
    """
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise EndpointRefused(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointRefused(field, "is not a valid URL") from exc
    if parts.scheme.lower() != "https":
        raise EndpointRefused(field, "must be an https:// URL")
    if "@" in parts.netloc or parts.username is not None:
        raise EndpointRefused(field, "must not contain a user name or password")
    host = parts.hostname or ""
    if not host:
        raise EndpointRefused(field, "must name a host")
    loopback = _check_host(host, policy, field)
    if port not in (None, 443) and not (loopback and policy.allow_private):
        raise EndpointRefused(field, "must use the default https port (443)")
    hosts = policy.allowed_hosts if allow_list and not loopback else None
    if hosts is not None and not host_matches(host, hosts):
        raise EndpointRefused(field, "its host is not on this app's allowed push hosts")
    return parts


def _check_host(host: str, policy: OutboundPolicy, field: str) -> bool:
    """Refuse a forbidden host; True when it is loopback (allowed by the policy)."""
    try:
        literal = literal_address(host)
    except ValueError as exc:
        raise EndpointRefused(field, f"has an invalid host: {exc}") from exc
    if literal is None:
        if is_loopback_name(host):
            if not policy.allow_private:
                raise EndpointRefused(field, "must not point at this machine (localhost)")
            return True
        return False
    if not address_allowed(literal, policy):
        kind = classify_address(literal)
        raise EndpointRefused(field, f"must not point at a {kind.value} address")
    return classify_address(literal) is AddressClass.LOOPBACK


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host` (empty when it does not resolve)."""
    loop = asyncio.get_running_loop()
    try:
        answers = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), DNS_TIMEOUT
        )
    except (OSError, TimeoutError):
        return []
    return [str(info[4][0]) for info in answers]


async def resolve_public(
    url: str,
    policy: OutboundPolicy,
    *,
    field: str = "endpoint",
    resolver: Resolver = system_resolver,
    allow_list: bool = True,
) -> None:
    """`check_endpoint_url`, then every DNS answer for the host must be allowed."""
    parts = check_endpoint_url(url, policy, field=field, allow_list=allow_list)
    host = parts.hostname or ""
    if literal_address(host) is not None or is_loopback_name(host):
        return
    for address in await resolver(host, parts.port or 443):
        if not address_allowed(address.split("%", 1)[0], policy):
            kind = classify_address(address.split("%", 1)[0])
            raise EndpointRefused(field, f"its host resolves to a {kind.value} address")


class GuardedProvider(Provider):
    """A provider for per-device URLs that refuses, unsent, URLs the policy forbids."""

    platform: ClassVar[Platform]

    def __init__(self, inner: Provider, policy: OutboundPolicy) -> None:
        super().__init__(inner.transport)
        self.inner = inner
        self.policy = policy
        self.platform = inner.platform  # type: ignore[misc]

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        return self.inner.render(message, recipient)

    async def authorize(self, request: HttpRequest) -> HttpRequest:
        return await self.inner.authorize(request)

    def classify(self, response: HttpResponse) -> Outcome:
        return self.inner.classify(response)

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        url = recipient.subscription.endpoint if recipient.subscription else recipient.token
        try:
            check_endpoint_url(url, self.policy, field="token")
        except EndpointRefused as exc:
            return Rejected(f"endpoint_refused: {exc.message}")
        return await self.inner.send(message, recipient)
