"""The emulated gateway's own reading of PAP: a validating parse of the control entity.

Written apart from the provider's PAP code on purpose, so a mistake in one is
caught by the other. The parse goes through expat into an ElementTree and
then checks what the PAP 2.1 DTD requires of a `push-message`: the DOCTYPE
(`pap`, the PAP 2.0 or 2.1 public identifier, no entity declarations), the
root `pap` with one `push-message`, its attributes (a `push-id` required,
nothing undeclared, timestamps in PAP's UTC form), the content model
`(address+, quality-of-service?)`, `address-value` on each address and
enumerated `quality-of-service` values.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote
from xml.parsers import expat

PUBLIC_IDS = frozenset({"-//WAPFORUM//DTD PAP 2.1//EN", "-//WAPFORUM//DTD PAP 2.0//EN"})
SYSTEM_ID = "http://www.openmobilealliance.org/tech/DTD/pap_2.1.dtd"
PUSH_MESSAGE_ATTRIBUTES = frozenset(
    {
        "push-id",
        "deliver-before-timestamp",
        "deliver-after-timestamp",
        "source-reference",
        "ppg-notify-requested-to",
        "progress-notes-requested",
    }
)
QOS_VALUES = {
    "priority": {"high", "medium", "low"},
    "delivery-method": {"confirmed", "preferconfirmed", "unconfirmed", "notspecified"},
    "network": None,
    "network-required": {"true", "false"},
    "bearer": None,
    "bearer-required": {"true", "false"},
}
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_ADDRESS = re.compile(r"^WAPPUSH=(?P<device>[^/]+)%3[Aa](?P<port>\d{1,5})/TYPE=USER@rim\.net$")
_PIN = re.compile(r"^[0-9a-fA-F]{8}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class PapInvalid(ValueError):
    """The control entity is not a valid PAP push-message."""


@dataclass(frozen=True, slots=True)
class Control:
    """What a push-message asked for."""

    push_id: str
    source_reference: str | None
    addresses: tuple[str, ...]
    delivery_method: str | None
    deliver_before: str | None


@dataclass(slots=True)
class _Doctype:
    name: str | None = None
    public_id: str | None = None


def parse_control(document: bytes) -> Control:
    """The validated push-message of a PAP control entity; `PapInvalid` names the fault."""
    doctype, root = _parse(document)
    if doctype.name != "pap" or doctype.public_id not in PUBLIC_IDS:
        raise PapInvalid("the DOCTYPE must be pap with the PAP 2.x public identifier")
    if root.tag != "pap" or set(root.attrib) - {"product-name"} or _text(root):
        raise PapInvalid("the root must be <pap>")
    if len(root) != 1 or root[0].tag != "push-message":
        raise PapInvalid("<pap> must hold exactly one <push-message>")
    message = root[0]
    if _text(message):
        raise PapInvalid("<push-message> holds elements only")
    _attributes(message, PUSH_MESSAGE_ATTRIBUTES, required="push-id")
    for name in ("deliver-before-timestamp", "deliver-after-timestamp"):
        if name in message.attrib and not _valid_timestamp(message.attrib[name]):
            raise PapInvalid(f"{name} must be a UTC date-time like 2013-09-30T13:30:00Z")
    addresses, qos = _content_model(list(message))
    return Control(
        push_id=message.attrib["push-id"],
        source_reference=message.attrib.get("source-reference"),
        addresses=tuple(_attributes(a, {"address-value"}, "address-value") for a in addresses),
        delivery_method=_quality_of_service(qos),
        deliver_before=message.attrib.get("deliver-before-timestamp"),
    )


def _content_model(children: list[ET.Element]) -> tuple[list[ET.Element], ET.Element | None]:
    """The addresses and the optional quality-of-service of `(address+, quality-of-service?)`."""
    tags = [child.tag for child in children]
    count = tags.count("address")
    if (
        count == 0
        or tags[:count] != ["address"] * count
        or tags[count:] not in ([], ["quality-of-service"])
    ):
        raise PapInvalid("push-message content must be (address+, quality-of-service?)")
    for child in children:
        if len(child) or _text(child):
            raise PapInvalid(f"<{child.tag}> must be empty")
    return children[:count], children[count] if count < len(children) else None


def _quality_of_service(qos: ET.Element | None) -> str | None:
    """The delivery method asked for, after checking every enumerated attribute."""
    if qos is None:
        return None
    _attributes(qos, set(QOS_VALUES), required=None)
    for name, allowed in QOS_VALUES.items():
        if allowed is not None and name in qos.attrib and qos.attrib[name] not in allowed:
            raise PapInvalid(f"quality-of-service {name} must be one of {sorted(allowed)}")
    return qos.attrib.get("delivery-method")


def parse_address(value: str) -> str | None:
    """The PIN or email of a `WAPPUSH=...%3A<port>/TYPE=USER@rim.net` address, or None."""
    match = _ADDRESS.match(value)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        return None
    device = unquote(match["device"])
    return device if _PIN.match(device) or _EMAIL.match(device) else None


def response_document(
    code: int, desc: str, *, push_id: str | None, sender: str, reply_time: datetime
) -> bytes:
    """A `push-response` (or a `badmessage-response` when the push-id is unknown)."""
    root = ET.Element("pap")
    if push_id is None:
        ET.SubElement(root, "badmessage-response", {"code": str(code), "desc": desc})
    else:
        response = ET.SubElement(
            root,
            "push-response",
            {
                "push-id": push_id,
                "sender-address": sender,
                "sender-name": "Clarion BlackBerry emulator",
                "reply-time": reply_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        ET.SubElement(response, "response-result", {"code": str(code), "desc": desc})
    prolog = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE pap PUBLIC "-//WAPFORUM//DTD PAP 2.1//EN" "{SYSTEM_ID}">\n'
    )
    return prolog.encode() + ET.tostring(root)


def _parse(document: bytes) -> tuple[_Doctype, ET.Element]:
    doctype = _Doctype()
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()

    def start_doctype(name: str, system_id: str | None, public_id: str | None, _: int) -> None:
        doctype.name, doctype.public_id = name, public_id

    def refuse(*_args: object) -> None:
        raise PapInvalid("entity declarations are not allowed")

    parser.StartDoctypeDeclHandler = start_doctype
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(document, True)
    except expat.ExpatError as exc:
        raise PapInvalid(f"not well-formed XML: {exc}") from exc
    return doctype, builder.close()


def _attributes(
    element: ET.Element, allowed: set[str] | frozenset[str], required: str | None
) -> str:
    unknown = set(element.attrib) - set(allowed)
    if unknown:
        raise PapInvalid(f"<{element.tag}> has undeclared attributes {sorted(unknown)}")
    if required is None:
        return ""
    value = element.attrib.get(required)
    if not value:
        raise PapInvalid(f"<{element.tag}> needs {required}")
    return value


def _text(element: ET.Element) -> str:
    return (element.text or "").strip() + "".join((c.tail or "").strip() for c in element)


def _valid_timestamp(value: str) -> bool:
    if not _TIMESTAMP.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")  # noqa: DTZ007 - format check only
    except ValueError:
        return False
    return True
