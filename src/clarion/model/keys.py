"""API keys: 256-bit random secrets with a readable prefix, stored only as SHA-256.

`clr_srv_...` is an app's server key, `clr_cli_...` its publishable client
key, `clr_adm_...` the admin key. The prefix lets a leaked key be recognised
(secret scanners, logs) without revealing it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a key may do: see DESIGN.md's API section."""

    ADMIN = "admin"
    SERVER = "server"
    CLIENT = "client"


_PREFIX = {Role.ADMIN: "adm", Role.SERVER: "srv", Role.CLIENT: "cli"}


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as shown once: the secret and what is stored of it."""

    key: str
    hash: str
    hint: str


def generate_key(kind: str) -> NewKey:
    """A fresh key `clr_<kind>_<43 base64url chars>` (32 random bytes)."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    key = f"clr_{kind}_{secret}"
    return NewKey(key=key, hash=hash_key(key), hint=key[:12] + "…")


def generate_role_key(role: Role) -> NewKey:
    return generate_key(_PREFIX[role])


def hash_key(key: str) -> str:
    """What the store keeps of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()
