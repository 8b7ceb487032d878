"""The Push Access Protocol (PAP 2.1) on the wire: control entity, multipart body, answer.

Why a module of its own: the BlackBerry provider decides *what* to push and
what an answer means; this module only knows how PAP spells it. The control
entity is built as an ElementTree, so every attribute value (push-id,
source-reference, addresses) is escaped by the XML library, never pasted into
markup; only the fixed prolog (XML declaration and the PAP 2.1 DOCTYPE) is
prepended. The body is `multipart/related; type="application/xml"`: the
control entity, then the content part.

Answers are read with expat directly so a document type declaration that
declares entities is refused before anything is expanded (the gateway is a
remote party).
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote
from xml.parsers import expat

PAP_PUBLIC_ID = "-//WAPFORUM//DTD PAP 2.1//EN"
PAP_SYSTEM_ID = "http://www.openmobilealliance.org/tech/DTD/pap_2.1.dtd"
PROLOG = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<!DOCTYPE pap PUBLIC "{PAP_PUBLIC_ID}" "{PAP_SYSTEM_ID}">\n'
)
DELIVERY_METHODS = frozenset({"confirmed", "preferconfirmed", "unconfirmed", "notspecified"})
DEFAULT_PORT = 100
"""The device-side push port of the addresses (`WAPPUSH=<pin>%3A100/...`)."""
MAX_PUSH = 8 * 1024
"""Bytes of the whole push request body; gateways refuse anything larger."""
MAX_ANSWER = 64 * 1024
CRLF = b"\r\n"


class UnreadableAnswer(ValueError):
    """The gateway's answer is not a PAP document we can read."""


@dataclass(frozen=True, slots=True)
class PushControl:
    """The `push-message` element's content."""

    push_id: str
    source_reference: str
    addresses: tuple[str, ...]
    deliver_before: datetime | None = None
    delivery_method: str = "unconfirmed"


@dataclass(frozen=True, slots=True)
class PushResult:
    """The `response-result` (or `badmessage-response`) of a synchronous answer."""

    code: int
    desc: str = ""
    push_id: str | None = None


def address_value(device: str, port: int = DEFAULT_PORT) -> str:
    """A BES/MDS user address: `WAPPUSH=<pin or user%40domain>%3A<port>/TYPE=USER@rim.net`."""
    return f"WAPPUSH={quote(device, safe='')}%3A{port}/TYPE=USER@rim.net"


def pap_timestamp(when: datetime) -> str:
    """PAP's UTC date-time form, `2013-09-30T13:30:00Z`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def control_entity(control: PushControl) -> bytes:
    """The PAP control document, escaped by ElementTree, with the PAP 2.1 DOCTYPE.

    ElementTree writes ASCII with character references for anything else,
    which is also valid UTF-8 as the declaration says.
    """
    root = ET.Element("pap")
    attributes = {"push-id": control.push_id, "source-reference": control.source_reference}
    if control.deliver_before is not None:
        attributes["deliver-before-timestamp"] = pap_timestamp(control.deliver_before)
    message = ET.SubElement(root, "push-message", attributes)
    for address in control.addresses:
        ET.SubElement(message, "address", {"address-value": address})
    ET.SubElement(message, "quality-of-service", {"delivery-method": control.delivery_method})
    return PROLOG.encode() + ET.tostring(root)


def multipart_related(control: bytes, content: bytes, content_type: str) -> tuple[str, bytes]:
    """The `Content-Type` header value and the body of a PAP push request."""
    boundary = secrets.token_hex(16).encode()
    while boundary in control or boundary in content:  # pragma: no cover - 2**-128
        boundary = secrets.token_hex(16).encode()
    parts = (
        ((b"Content-Type", b"application/xml; charset=UTF-8"),),
        ((b"Content-Type", content_type.encode()), (b"Content-Transfer-Encoding", b"binary")),
    )
    body = bytearray()
    for headers, data in zip(parts, (control, content), strict=True):
        body += b"--" + boundary + CRLF
        for name, value in headers:
            body += name + b": " + value + CRLF
        body += CRLF + data + CRLF
    body += b"--" + boundary + b"--" + CRLF
    header = f'multipart/related; type="application/xml"; boundary={boundary.decode()}'
    return header, bytes(body)


def read_answer(body: bytes) -> PushResult:
    """The result code of a `push-response` or `badmessage-response`; `UnreadableAnswer`."""
    if len(body) > MAX_ANSWER:
        raise UnreadableAnswer("answer too large")
    elements = _elements(body)
    push_id = next((a.get("push-id") for name, a in elements if name == "push-response"), None)
    for name, attributes in elements:
        if name in ("response-result", "badmessage-response") and "code" in attributes:
            code = _code(attributes["code"])
            return PushResult(code, attributes.get("desc", ""), push_id)
    raise UnreadableAnswer("no response-result")


def _code(text: str) -> int:
    """The standard four-digit code; RIM's own codes prefix it with a 2 (22000 -> 2000)."""
    if not text.isdigit():
        raise UnreadableAnswer("result code is not a number")
    code = int(text)
    if len(text) == 5 and text.startswith("2"):
        code %= 10000
    return code


def _elements(body: bytes) -> list[tuple[str, dict[str, str]]]:
    """Every element's name and attributes in document order; entity declarations refused."""
    found: list[tuple[str, dict[str, str]]] = []
    parser = expat.ParserCreate()

    def refuse(*_args: object) -> None:
        raise UnreadableAnswer("entity declarations are not accepted")

    parser.StartElementHandler = lambda name, attributes: found.append((name, attributes))
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise UnreadableAnswer(f"not well-formed XML: {exc}") from exc
    return found
