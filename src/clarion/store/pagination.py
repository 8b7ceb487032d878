"""Opaque cursors for keyset pagination: the last key seen, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

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


T = TypeVar("T")


def decode_after(cursor: str | None) -> str | None:
    """The last id a list cursor carries (lists page by string ids)."""
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise FieldError("cursor", "is not a cursor this API returned")
    return after


def page_json(
    items: Sequence[T], size: int, key: Callable[[T], str], render: Callable[[T], Any]
) -> dict[str, Any]:
    """A list answer from `size + 1` fetched items: the page and the cursor to the next one."""
    shown = items[:size]
    more = len(items) > size
    return {
        "items": [render(item) for item in shown],
        "next_cursor": encode_cursor(key(shown[-1])) if more else None,
    }
