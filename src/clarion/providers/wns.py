"""Windows Push Notification Services (WNS): toast, tile, badge and raw pushes.

WNS wants an OAuth client-credentials token (cached, refreshed before expiry
and after a 401) and one HTTP/1.1 POST per push to the device's channel URI,
which is an opaque URL stored whole as the recipient's token. The payload is
XML for toast, tile and badge pushes and opaque bytes for raw ones.

The XML is built with `xml.etree.ElementTree`, never by string formatting, so
the content's `<`, `&`, quotes and `]]>` are escaped; characters XML 1.0 cannot
carry at all (most C0 controls, lone surrogates) are dropped.

The notification's `wns` object (`Message.overrides`) may hold:

    type             "toast" | "tile" | "badge" | "raw"; default: toast, or for
                     silent content badge (only a badge number) or raw
    xml              a complete XML document sent as is for toast/tile/badge
    raw              the raw payload (a string, else sent as JSON); default: the
                     JSON of the content's fields and data
    launch           the toast's launch argument; default: the content's url,
                     else the JSON of its data
    toast            extra attributes of <toast> ({"scenario": "reminder"})
    image            extra attributes of <image> ({"placement": "hero"})
    audio            attributes of <audio>, replacing the derived ones
    badge            the badge value for type badge (a number or a glyph name)
    tag, group       X-WNS-Tag / X-WNS-Group; default tag: the collapse key
    cache_policy     X-WNS-Cache-Policy: "cache" | "no-cache"
    priority         X-WNS-PRIORITY 1..4, replacing the one derived from priority
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from clarion.clock import Clock
from clarion.model.content import Content
from clarion.model.message import Message, Priority, Recipient
from clarion.model.outcome import AuthFailed, InvalidToken, Outcome, Rejected, Retry, Sent
from clarion.model.platform import Platform
from clarion.providers.base import HttpRequest, HttpResponse, PayloadTooLarge, Transport
from clarion.providers.oauth import (
    BearerTokenProvider,
    ClientCredentialsTokenSource,
    parse_retry_after,
)

WNS_TOKEN_URL = "https://login.live.com/accesstoken.srf"  # noqa: S105 - a URL
WNS_SCOPE = "notify.windows.com"
MAX_PAYLOAD = 5000
"""Bytes; WNS answers 413 above it."""
MAX_TAG = 16
TYPES = ("toast", "tile", "badge", "raw")
CONTENT_TYPES = {
    "toast": "text/xml",
    "tile": "text/xml",
    "badge": "text/xml",
    "raw": "application/octet-stream",
}
NORMAL_PRIORITY = {"toast": "2", "tile": "2", "badge": "2", "raw": "3"}
"""X-WNS-PRIORITY for `normal` pushes; `high` ones always get 1."""
MAX_ACTIONS = 5
DEFAULT_SOUND = "ms-winsoundevent:Notification.Default"
TOKEN_REJECTED = "token_rejected"  # noqa: S105 - a reason

# status -> (outcome class, reason). 401 also drops the cached access token.
WNS_STATUSES: dict[int, tuple[type[Outcome], str]] = {
    200: (Sent, "received"),
    400: (Rejected, "bad_request"),
    401: (Retry, TOKEN_REJECTED),
    403: (AuthFailed, "channel_not_owned_by_app"),
    404: (InvalidToken, "channel_unknown"),
    405: (Rejected, "method_not_allowed"),
    406: (Retry, "throttled"),
    410: (InvalidToken, "channel_expired"),
    413: (Rejected, "payload_too_large"),
    429: (Retry, "throttled"),
    500: (Retry, "server_error"),
    503: (Retry, "unavailable"),
}
# any other status, by class
WNS_STATUS_CLASSES: dict[int, tuple[type[Outcome], str]] = {
    4: (Rejected, "client_error"),
    5: (Retry, "server_error"),
}
REASON_HEADERS = (
    ("x-wns-status", "status"),
    ("x-wns-deviceconnectionstatus", "device"),
    ("x-wns-error-description", "error"),
)
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
_NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class WnsCredentials:
    """A WNS app's identity: the Package SID (or Entra app id) and its secret."""

    client_id: str
    client_secret: str = field(repr=False)
    token_url: str = WNS_TOKEN_URL
    """Where tokens come from; the Windows App SDK flavour uses Entra ID's."""
    scope: str = WNS_SCOPE


class WnsOverrideError(ValueError):
    """The notification's `wns` object cannot be used (unknown type, bad attribute name)."""


class WnsProvider(BearerTokenProvider):
    """Sends to WNS channel URIs with a cached OAuth token.

    A refused token (401) is dropped and the push sent once more with a fresh
    one (`BearerTokenProvider.send`); a second refusal is `AuthFailed`.
    """

    platform: ClassVar[Platform] = Platform.WNS

    def __init__(
        self,
        transport: Transport,
        credentials: WnsCredentials,
        *,
        clock: Clock,
        timeout: float = 10.0,
    ) -> None:
        tokens = ClientCredentialsTokenSource(
            transport,
            token_url=credentials.token_url,
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            scope=credentials.scope,
            clock=clock,
        )
        super().__init__(transport, tokens)
        self.credentials = credentials
        self.clock = clock
        self.timeout = timeout

    def render(self, message: Message, recipient: Recipient) -> HttpRequest:
        """The POST to the channel URI; `WnsOverrideError` for an unusable `wns` object."""
        wns = message.overrides
        kind = str(wns.get("type") or default_type(message.content))
        if kind not in TYPES:
            raise WnsOverrideError(f"wns.type must be one of {', '.join(TYPES)}, not {kind!r}")
        body = render_body(kind, message.content, wns)
        if len(body) > MAX_PAYLOAD:
            raise PayloadTooLarge(len(body), MAX_PAYLOAD)
        headers = [
            ("content-type", CONTENT_TYPES[kind]),
            ("x-wns-type", f"wns/{kind}"),
            ("x-wns-requestforstatus", "true"),
            ("x-wns-priority", self._priority(kind, message)),
        ]
        ttl = self._ttl(message)
        if ttl is not None:
            headers.append(("x-wns-ttl", str(ttl)))
        tag = wns.get("tag") or message.collapse_key
        if tag:
            headers.append(("x-wns-tag", short_id(str(tag))))
        if wns.get("group"):
            headers.append(("x-wns-group", short_id(str(wns["group"]))))
        if wns.get("cache_policy"):
            headers.append(("x-wns-cache-policy", str(wns["cache_policy"])))
        return HttpRequest("POST", recipient.token, tuple(headers), body, self.timeout)

    def _priority(self, kind: str, message: Message) -> str:
        explicit = message.overrides.get("priority")
        if explicit is not None:
            if str(explicit) not in ("1", "2", "3", "4"):
                raise WnsOverrideError(f"wns.priority must be 1, 2, 3 or 4, not {explicit!r}")
            return str(explicit)
        return "1" if message.priority is Priority.HIGH else NORMAL_PRIORITY[kind]

    def _ttl(self, message: Message) -> int | None:
        remaining = message.seconds_left(self.clock.now())
        return None if remaining is None else max(1, remaining)

    def classify(self, response: HttpResponse) -> Outcome:
        """The outcome from `WNS_STATUSES`; a 401 also drops the cached token."""
        kind, reason = WNS_STATUSES.get(response.status) or WNS_STATUS_CLASSES.get(
            response.status // 100, (Rejected, "unexpected_status")
        )
        if reason == TOKEN_REJECTED:
            self.tokens.invalidate()
        if kind is Sent:
            return Sent(response.headers.get("x-wns-msg-id"))
        full = explain(reason, response)
        if kind is Retry:
            headers = response.headers
            after = headers.get("retry-after") or headers.get("x-wns-continue-after")
            return Retry(full, parse_retry_after(after, self.clock.now()))
        return kind(full)

    async def send(self, message: Message, recipient: Recipient) -> Outcome:
        try:
            return await super().send(message, recipient)
        except WnsOverrideError as exc:
            return Rejected(f"invalid_wns_override: {exc}")


def default_type(content: Content) -> str:
    """Toast for something to show, badge for a bare badge number, else raw."""
    if not content.is_silent:
        return "toast"
    return "badge" if content.badge is not None and not content.data else "raw"


def render_body(kind: str, content: Content, wns: Mapping[str, Any]) -> bytes:
    """The payload bytes for one WNS type."""
    if kind == "raw":
        raw = wns.get("raw")
        if raw is None:
            return raw_json(content)
        return (raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"))).encode()
    if wns.get("xml"):
        return str(wns["xml"]).encode()
    builders = {"toast": toast_xml, "tile": tile_xml, "badge": badge_xml}
    root = builders[kind](content, wns)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False))


def toast_xml(content: Content, wns: Mapping[str, Any]) -> ET.Element:
    """`<toast>` with a ToastGeneric binding, actions and audio from the content."""
    toast = ET.Element("toast")
    launch = wns.get("launch")
    if launch is None and content.url:
        launch = content.url
        toast.set("activationType", "protocol")
    elif launch is None and content.data:
        launch = json.dumps(dict(content.data), ensure_ascii=False, separators=(",", ":"))
    if launch is not None:
        toast.set("launch", clean(str(launch)))
    _set_attributes(toast, wns.get("toast"))
    binding = ET.SubElement(ET.SubElement(toast, "visual"), "binding", template="ToastGeneric")
    for text in (content.title, content.body):
        if text:
            ET.SubElement(binding, "text").text = clean(text)
    if content.subtitle:
        ET.SubElement(binding, "text", placement="attribution").text = clean(content.subtitle)
    if content.image:
        image = ET.SubElement(binding, "image", src=clean(content.image))
        _set_attributes(image, wns.get("image"))
    if content.actions:
        actions = ET.SubElement(toast, "actions")
        for action in content.actions[:MAX_ACTIONS]:
            ET.SubElement(
                actions,
                "action",
                content=clean(action.title),
                arguments=clean(action.url or action.id),
                activationType="protocol" if action.url else "foreground",
            )
    audio = ET.SubElement(toast, "audio")
    if wns.get("audio"):
        _set_attributes(audio, wns["audio"])
    elif content.sound:
        audio.set("src", sound_uri(content.sound))
    else:
        audio.set("silent", "true")
    return toast


def tile_xml(content: Content, wns: Mapping[str, Any]) -> ET.Element:
    """A medium and a wide tile showing the title and body."""
    tile = ET.Element("tile")
    visual = ET.SubElement(tile, "visual")
    for template in ("TileMedium", "TileWide"):
        binding = ET.SubElement(visual, "binding", template=template)
        if content.title:
            ET.SubElement(binding, "text", {"hint-wrap": "true"}).text = clean(content.title)
        if content.body:
            attrs = {"hint-style": "captionSubtle", "hint-wrap": "true"}
            ET.SubElement(binding, "text", attrs).text = clean(content.body)
    return tile


def badge_xml(content: Content, wns: Mapping[str, Any]) -> ET.Element:
    """`<badge value="N"/>`; no badge number clears the badge (`none`)."""
    value = wns.get("badge", content.badge)
    return ET.Element("badge", value=clean(str(value)) if value is not None else "none")


def raw_json(content: Content) -> bytes:
    """The raw payload: the content's fields and data as one JSON object."""
    fields: dict[str, Any] = dict(content.data)
    for name in ("title", "subtitle", "body", "image", "badge", "sound", "url"):
        value = getattr(content, name)
        if value is not None:
            fields[name] = value
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def explain(reason: str, response: HttpResponse) -> str:
    """`reason (status; status=...; device=...; error=...)` from the X-WNS-* headers."""
    parts = [str(response.status)]
    parts += [
        f"{name}={response.headers[h]}" for h, name in REASON_HEADERS if h in response.headers
    ]
    return f"{reason} ({'; '.join(parts)})"


def sound_uri(sound: str) -> str:
    """`default` is the system sound; a value with a scheme is used as given."""
    if ":" in sound:
        return clean(sound)
    if sound == "default":
        return DEFAULT_SOUND
    return f"ms-winsoundevent:Notification.{clean(sound)}"


def clean(text: str) -> str:
    """The text without the characters XML 1.0 cannot represent even escaped."""
    return _NOT_XML_CHARS.sub("", text)


def short_id(value: str) -> str:
    """A tag or group WNS accepts (alphanumeric, <= 16): as is, or a stable hash."""
    if len(value) <= MAX_TAG and value.isascii() and value.isalnum():
        return value
    return hashlib.sha256(value.encode()).hexdigest()[:MAX_TAG]


def _set_attributes(element: ET.Element, attributes: Any) -> None:
    if not isinstance(attributes, Mapping):
        return
    for name, value in attributes.items():
        if not _XML_NAME.fullmatch(str(name)):
            raise WnsOverrideError(f"{name!r} is not an XML attribute name")
        if isinstance(value, bool):
            value = "true" if value else "false"
        element.set(str(name), clean(str(value)))
