"""Provider credentials sealed at rest with AES-256-GCM.

Why: a copy of the database (a backup, a stolen disk, a support dump) must
not hand out an app's `.p8` key or OAuth secret. Each value is encrypted under
a key derived from the settings' secret key, with `"{app_id}:{provider}"` as
associated data, so a sealed value copied into another app's row (or another
provider's) fails to open instead of quietly working for the wrong tenant.

Layout of a sealed value (bytes):

    version (1) | key id (4) | nonce (12) | ciphertext + GCM tag (16)

`version` is the format (1). The key id is a short fingerprint of the key
that sealed the value, so rotation (`clarion rotate-secret`) can tell values
under the old key from values under the new one, and opening with the wrong
key says so plainly. It reveals nothing useful about the key (4 bytes of an
HKDF output). A fresh random 96-bit nonce is drawn for every seal.

Exceptions: `SealError` (a `ValueError`) for anything that cannot be opened:
unknown format, a key this `Sealer` does not hold, or a failed authentication
(tampered, truncated, or moved to another app or provider). Its message never
contains key material or plaintext.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = 1
KEY_ID_SIZE = 4
NONCE_SIZE = 12
HEADER_SIZE = 1 + KEY_ID_SIZE + NONCE_SIZE
TAG_SIZE = 16
SECRET_KEY_SIZE = 32


class SealError(ValueError):
    """A sealed value cannot be opened (wrong key, wrong app or provider, tampered)."""


def _derive(secret_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret_key)


def key_id(secret_key: bytes) -> bytes:
    """The 4-byte fingerprint written in front of every value sealed under `secret_key`."""
    return _derive(secret_key, b"clarion credentials key id")[:KEY_ID_SIZE]


def associated_data(app_id: str, provider: str) -> bytes:
    """What a sealed credential is bound to: its app and its provider."""
    return f"{app_id}:{provider}".encode()


class Sealer:
    """Seals with the current secret key; opens with it or any of `previous`.

    The AES key is derived from the 32-byte secret key with HKDF-SHA256, so
    the same secret can serve other purposes without reusing key material.
    """

    def __init__(self, secret_key: bytes, *, previous: Iterable[bytes] = ()) -> None:
        keys = [secret_key, *previous]
        for key in keys:
            if len(key) != SECRET_KEY_SIZE:
                raise ValueError("a secret key is exactly 32 bytes")
        self.key_id = key_id(secret_key)
        self._aeads = {
            key_id(key): AESGCM(_derive(key, b"clarion credentials aes-256-gcm")) for key in keys
        }

    def __repr__(self) -> str:
        return f"Sealer(key_id={self.key_id.hex()})"

    def seal(self, plaintext: bytes, *, app_id: str, provider: str) -> bytes:
        """Encrypt `plaintext` for this app and provider under the current key."""
        nonce = os.urandom(NONCE_SIZE)
        aead = self._aeads[self.key_id]
        body = aead.encrypt(nonce, plaintext, associated_data(app_id, provider))
        return bytes([FORMAT_VERSION]) + self.key_id + nonce + body

    def open(self, sealed: bytes, *, app_id: str, provider: str) -> bytes:
        """The plaintext, or `SealError` when this value is not for this app and provider."""
        if len(sealed) < HEADER_SIZE + TAG_SIZE or sealed[0] != FORMAT_VERSION:
            raise SealError("not a sealed credential of a known format")
        sealed_by = sealed[1 : 1 + KEY_ID_SIZE]
        aead = self._aeads.get(sealed_by)
        if aead is None:
            raise SealError(f"sealed under another secret key (key id {sealed_by.hex()})")
        nonce = sealed[1 + KEY_ID_SIZE : HEADER_SIZE]
        try:
            return aead.decrypt(nonce, sealed[HEADER_SIZE:], associated_data(app_id, provider))
        except InvalidTag as exc:
            raise SealError(
                "the sealed credential does not open: it belongs to another app or "
                "provider, or it was altered"
            ) from exc

    def is_current(self, sealed: bytes) -> bool:
        """Whether `sealed` is under the current key (rotation skips those)."""
        return sealed_key_id(sealed) == self.key_id

    def seal_json(self, config: Mapping[str, Any], *, app_id: str, provider: str) -> bytes:
        """Seal a JSON-able configuration (what the credentials API stores)."""
        text = json.dumps(config, separators=(",", ":"), sort_keys=True)
        return self.seal(text.encode(), app_id=app_id, provider=provider)

    def open_json(self, sealed: bytes, *, app_id: str, provider: str) -> dict[str, Any]:
        """The configuration sealed by `seal_json`."""
        value = json.loads(self.open(sealed, app_id=app_id, provider=provider))
        if not isinstance(value, dict):
            raise SealError("the sealed credential is not a JSON object")
        return value


def sealed_key_id(sealed: bytes) -> bytes:
    """The key id written in a sealed value (empty for a value of unknown format)."""
    if len(sealed) < HEADER_SIZE or sealed[0] != FORMAT_VERSION:
        return b""
    return sealed[1 : 1 + KEY_ID_SIZE]
