"""Identifiers: a type prefix plus a time-ordered random part (ULID layout).

Time order makes ids usable as keyset-pagination cursors in creation order;
80 random bits make them unguessable.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_id(prefix: str, *, millis: int | None = None) -> str:
    """`<prefix>_` + 26 characters: 48-bit milliseconds then 80 random bits."""
    ms = time.time_ns() // 1_000_000 if millis is None else millis
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
