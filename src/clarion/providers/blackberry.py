"""BlackBerry: pushes through an enterprise push gateway (BES/MDS) with PAP 2.1.

BlackBerry's public push service closed on 4 January 2022; BlackBerry
Enterprise Server / MDS gateways still take the Push Access Protocol, so this
provider is a PAP push initiator for them. One push is a POST of
`multipart/related` (the PAP control entity, then the content part: the
common content as JSON, with the `blackberry` override's other keys merged
in), with HTTP Basic auth (application id, password) when a password is set
and `X-Wap-Application-Id` for MDS. The whole body is limited to 8 KB.

- `push-id`: `Message.push_id` for a push to one device, so it is unique per
  delivery and the same on every retry; a gateway that already accepted it
  answers 2007 (duplicate push-id), which means an earlier attempt got
  through, so it counts as `Sent`. A batch's push-id is derived from the
  sorted push ids of its deliveries (the same batch retried keeps it).
- `deliver-before-timestamp`: `Message.expires_at`; `source-reference`: the
  application id; one `address` per device in the credential's
  `address_format` (`pin`: 8 hex digits, `email`: an enterprise address).
- `quality-of-service delivery-method="unconfirmed"` unless the override says
  `delivery_method` (`confirmed`, `preferconfirmed`, `notspecified`); the
  override's `port` changes the device push port (default 100).

`send_many` pushes several devices of one notification in one PAP request
per distinct content (a device's locale can change it) and returns an
outcome per device. PAP answers a push with one result, so when a batch is
refused for an address (2002) or because the gateway takes one address per
push (3005), each device is pushed alone to find out which one failed; any
other answer applies to every device of the batch. No result notification
(`ppg-notify-requested-to`) is asked for: the synchronous answer is used.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from clarion.clock import Clock
from clarion.model.message import Message, Recipient
from clarion.model.notification import content_json
from clarion.model.outcome import AuthFailed, InvalidToken, Outcome, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import (
    HttpRequest,
    HttpResponse,
    InvalidCredentials,
    PayloadTooLarge,
    Provider,
    ProviderError,
    Transport,
    TransportError,
)
from clarion.providers.blackberry_pap import (
    DEFAULT_PORT,
    DELIVERY_METHODS,
    MAX_PUSH,
    PushControl,
    UnreadableAnswer,
    address_value,
    control_entity,
    multipart_related,
    read_answer,
)
from clarion.providers.oauth import parse_retry_after

MAX_ADDRESSES = 100
"""Devices in one PAP request at most (the 8 KB limit may split a batch further)."""
BATCH_NAMESPACE = uuid.UUID("0f6f2f4e-3a55-4c0e-9d0b-6a1f9b2c7e35")
CONTENT_TYPE = "application/json; charset=utf-8"
_PIN = re.compile(r"^[0-9a-fA-F]{8}$")

# PAP result codes first, then their class (first digit), then HTTP statuses.
PAP_CODES: dict[int, tuple[type[Outcome], str]] = {
    1000: (Sent, "ok"),
    1001: (Sent, "accepted"),
    2002: (InvalidToken, "address_error"),
    2007: (Sent, "duplicate_push_id"),
    3005: (Retry, "multiple_addresses_not_supported"),
}
PAP_CODE_CLASSES: dict[int, tuple[type[Outcome], str]] = {
    1: (Sent, "ok"),
    2: (Rejected, "client_error"),
    3: (Retry, "server_error"),
    4: (Retry, "service_failure"),
}
HTTP_STATUSES: dict[int, tuple[type[Outcome], str]] = {
    401: (AuthFailed, "unauthorized"),
    403: (AuthFailed, "forbidden"),
    404: (AuthFailed, "no_push_service_at_endpoint"),
    408: (Retry, "timeout"),
    413: (Rejected, "too_large"),
    429: (Retry, "throttled"),
}
HTTP_STATUS_CLASSES: dict[int, tuple[type[Outcome], str]] = {
    4: (Rejected, "client_error"),
    5: (Retry, "server_error"),
}
SPLIT_CODES = frozenset({2002, 3005})
"""Answers to a batch that say nothing about most of its devices: push each alone."""


class AddressFormat(StrEnum):
    """What the gateway addresses devices by."""

    PIN = "pin"
    EMAIL = "email"


class UnusableRecipient(ProviderError):
    """The device's token or the notification's override cannot be pushed as given."""


@dataclass(frozen=True, slots=True)
class BlackBerryCredentials:
    """A push application on a BES/MDS (or PPG) gateway.

    `endpoint` is the full push URL (`https://mds.example.com/pap`);
    `password`, when set, goes with `application_id` as HTTP Basic auth.
    """

    endpoint: str
    application_id: str
    password: str | None = field(default=None, repr=False)
    address_format: AddressFormat = AddressFormat.PIN

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BlackBerryCredentials:
        return cls(
            config["endpoint"],
            config["application_id"],
            config.get("password"),
            AddressFormat(config.get("address_format") or AddressFormat.PIN),
        )


@dataclass(frozen=True, slots=True)
class _Options:
    """What the `blackberry` override controls, and the content it adds."""

    delivery_method: str
    port: int
    content: bytes


class BlackBerryProvider(Provider):
    """A PAP push initiator for one gateway and application id."""

    platform: ClassVar[Platform] = Platform.BLACKBERRY

    def __init__(
        self,
        transport: Transport,
        credentials: BlackBerryCredentials,
        *,
        clock: Clock,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(transport)
        self.credentials = credentials
        self.clock = clock
        self.timeout = timeout

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        """One device's push with `push-id` = `message.push_id`."""
        self.check_address(recipient)
        return self.render_push(str(message.push_id), message, [recipient])

    def render_push(
        self, push_id: str, message: Message, recipients: Sequence[Recipient]
    ) -> HttpRequest:
        """A push of `message`'s content to every recipient; `PayloadTooLarge` over 8 KB."""
        options = self.options(message)
        control = PushControl(
            push_id=push_id,
            source_reference=self.credentials.application_id,
            addresses=tuple(address_value(r.token, options.port) for r in recipients),
            deliver_before=message.expires_at,
            delivery_method=options.delivery_method,
        )
        content_type, body = multipart_related(
            control_entity(control), options.content, CONTENT_TYPE
        )
        if len(body) > MAX_PUSH:
            raise PayloadTooLarge(len(body), MAX_PUSH)
        headers = (
            ("content-type", content_type),
            ("x-wap-application-id", self.credentials.application_id),
            ("accept", "application/xml"),
        )
        return HttpRequest("POST", self.credentials.endpoint, headers, body, self.timeout)

    def options(self, message: Message) -> _Options:
        """The override's PAP options and the JSON content part; `UnusableRecipient`."""
        extra = dict(message.overrides)
        method = extra.pop("delivery_method", "unconfirmed")
        if method not in DELIVERY_METHODS:
            raise UnusableRecipient(f"delivery_method must be one of {sorted(DELIVERY_METHODS)}")
        port = extra.pop("port", DEFAULT_PORT)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise UnusableRecipient("port must be a number from 1 to 65535")
        content = {**content_json(message.content), **extra}
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return _Options(method, port, text.encode())

    def check_address(self, recipient: Recipient) -> None:
        """Refuse a token the gateway's address format cannot carry."""
        is_pin = bool(_PIN.match(recipient.token))
        if is_pin != (self.credentials.address_format is AddressFormat.PIN):
            wanted = self.credentials.address_format.value
            raise UnusableRecipient(f"address_format: this gateway takes {wanted} addresses")

    async def authorize(self, request: HttpRequest) -> HttpRequest:
        if self.credentials.password is None:
            return request
        pair = f"{self.credentials.application_id}:{self.credentials.password}".encode()
        return request.with_header("authorization", "Basic " + base64.b64encode(pair).decode())

    def classify(self, response: HttpResponse) -> Outcome:
        """The outcome by PAP result code, else by HTTP status (one table each)."""
        outcome, _code = self._classify(response)
        return outcome

    def _classify(self, response: HttpResponse) -> tuple[Outcome, int | None]:
        if response.status not in (200, 202):
            kind, reason = HTTP_STATUSES.get(response.status) or HTTP_STATUS_CLASSES.get(
                response.status // 100, (Rejected, "unexpected_status")
            )
            return self._outcome(kind, f"{reason} (HTTP {response.status})", response), None
        try:
            result = read_answer(response.body)
        except UnreadableAnswer as exc:
            return Retry(f"unreadable push-response: {exc}"), None
        kind, reason = PAP_CODES.get(result.code) or PAP_CODE_CLASSES.get(
            result.code // 1000, (Rejected, "unknown_code")
        )
        full = f"{reason} ({result.code}{': ' + result.desc if result.desc else ''})"
        return self._outcome(kind, full, response), result.code

    def _outcome(self, kind: type[Outcome], reason: str, response: HttpResponse) -> Outcome:
        if kind is Sent:
            return Sent(None)
        if kind is Retry:
            after = parse_retry_after(response.headers.get("retry-after"), self.clock.now())
            return Retry(reason, after)
        return kind(reason)

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        """One push; the same as `send_many` with one device."""
        outcomes = await self.send_many({recipient: message})
        return outcomes[recipient.device_id]

    async def send_many(
        self, message_by_recipient: Mapping[Recipient, Message]
    ) -> dict[str, Outcome]:
        """Push each recipient its message, batching devices that get the same push.

        Returns an outcome per `device_id`. Messages that differ only in
        `push_id` (one notification, one locale) go in one PAP request of up
        to `MAX_ADDRESSES` devices; see the module docstring for how a
        refused batch is resolved per device.
        """
        outcomes: dict[str, Outcome] = {}
        groups: dict[tuple[bytes, Any, str, int], list[tuple[Recipient, Message]]] = {}
        for recipient, message in message_by_recipient.items():
            try:
                self.check_address(recipient)
                options = self.options(message)
            except UnusableRecipient as exc:
                outcomes[recipient.device_id] = Rejected(str(exc))
                continue
            key = (options.content, message.expires_at, options.delivery_method, options.port)
            groups.setdefault(key, []).append((recipient, message))
        batches = [
            members[start : start + MAX_ADDRESSES]
            for members in groups.values()
            for start in range(0, len(members), MAX_ADDRESSES)
        ]
        for result in await asyncio.gather(*(self._push(batch) for batch in batches)):
            outcomes.update(result)
        return outcomes

    async def _push(self, batch: Sequence[tuple[Recipient, Message]]) -> dict[str, Outcome]:
        recipients = [recipient for recipient, _ in batch]
        message = batch[0][1]
        push_id = str(message.push_id) if len(batch) == 1 else batch_push_id(batch)
        try:
            request = self.render_push(push_id, message, recipients)
        except PayloadTooLarge as exc:
            if len(batch) == 1:
                return {recipients[0].device_id: Rejected(f"payload_too_large: {exc}")}
            return await self._each(batch, halves=True)
        outcome, code = await self._exchange(request)
        if len(batch) > 1 and code in SPLIT_CODES:
            return await self._each(batch, halves=False)
        return {recipient.device_id: outcome for recipient in recipients}

    async def _each(
        self, batch: Sequence[tuple[Recipient, Message]], *, halves: bool
    ) -> dict[str, Outcome]:
        """Push the batch again in halves (too large) or one device at a time."""
        size = (len(batch) + 1) // 2 if halves else 1
        parts = [batch[i : i + size] for i in range(0, len(batch), size)]
        outcomes: dict[str, Outcome] = {}
        for result in await asyncio.gather(*(self._push(part) for part in parts)):
            outcomes.update(result)
        return outcomes

    async def _exchange(self, request: HttpRequest) -> tuple[Outcome, int | None]:
        try:
            request = await self.authorize(request)
            response = await self.transport.request(request)
        except InvalidCredentials as exc:
            return AuthFailed(str(exc)), None
        except TransportError as exc:
            return Retry(f"transport: {exc}"), None
        return self._classify(response)


def batch_push_id(batch: Sequence[tuple[Recipient, Message]]) -> str:
    """The push-id of a batch: the same deliveries give the same id on every retry."""
    members = ",".join(sorted(str(message.push_id) for _, message in batch))
    return str(uuid.uuid5(BATCH_NAMESPACE, members))
