"""Opaque cursors for keyset pagination: the last key seen, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from clarion.model.errors import FieldError

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> Any:
    """The key a cursor carries; a tampered cursor is a `FieldError` on `cursor`."""
    if not cursor:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise FieldError("cursor", "is not a cursor this API returned") from exc


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise FieldError("limit", f"must be from 1 to {MAX_LIMIT}")
    return limit
