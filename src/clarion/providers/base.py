"""The provider interface every push service module implements.

A provider turns a `Message` for one `Recipient` into an HTTP request in the
service's native format (`render`), adds authentication (`authorize`, which may
fetch and cache an OAuth token or sign a JWT), sends it through a shared
`Transport`, and maps the answer onto an `Outcome` through one table
(`classify`). Providers never touch the store.

Exceptions:

    ProviderError
    ├── PayloadTooLarge     the rendered payload exceeds the service's limit
    ├── InvalidCredentials  the credential cannot be used at all (bad key, bad JSON)
    └── TransportError      connection failed, reset or timed out; retry the push
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from clarion.model.message import Message, Recipient
from clarion.model.outcome import AuthFailed, Outcome, Rejected, Retry
from clarion.model.platform import Platform


class ProviderError(Exception):
    """Base of the errors a provider raises."""


class PayloadTooLarge(ProviderError):
    """The rendered payload is over the service's size limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"payload is {size} bytes, the limit is {limit}")
        self.size = size
        self.limit = limit


class InvalidCredentials(ProviderError):
    """The credential is unusable (unparseable key, missing field, token endpoint said no)."""


class TransportError(ProviderError):
    """The request did not get an HTTP answer (connect error, reset, timeout)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request, ready to go on the wire."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    timeout: float = 10.0

    def with_header(self, name: str, value: str) -> HttpRequest:
        return HttpRequest(
            self.method, self.url, (*self.headers, (name, value)), self.body, self.timeout
        )


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An HTTP answer; header names are lower case."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class Transport(Protocol):
    """Sends requests; implementations multiplex over long-lived connections.

    `request` raises `TransportError` when no HTTP answer arrives in time.
    """

    async def request(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class Provider(ABC):
    """One push service, bound to one app's credential; immutable once built."""

    platform: ClassVar[Platform]

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @abstractmethod
    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        """The unauthenticated request; raises `PayloadTooLarge`."""

    @abstractmethod
    async def authorize(self, request: HttpRequest) -> HttpRequest:
        """The request with authentication added (cached tokens, signed JWTs).

        Raises `InvalidCredentials` when the credential is refused and
        `TransportError` when a token endpoint cannot be reached.
        """

    @abstractmethod
    def classify(self, response: HttpResponse) -> Outcome:
        """Map the service's answer onto an `Outcome` (one table per provider)."""

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        """Render, authorize, send and classify one push."""
        try:
            request = self.render(message, recipient)
        except PayloadTooLarge as exc:
            return Rejected(f"payload_too_large: {exc}")
        try:
            request = await self.authorize(request)
            response = await self.transport.request(request)
        except InvalidCredentials as exc:
            return AuthFailed(str(exc))
        except TransportError as exc:
            return Retry(f"transport: {exc}")
        return self.classify(response)
