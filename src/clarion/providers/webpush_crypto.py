"""Web Push message encryption: RFC 8291 on top of RFC 8188's `aes128gcm` coding.

A push service only relays bytes; the browser decrypts them with the keys of
its subscription (`p256dh`, `auth`). Each message gets a fresh ephemeral P-256
key and a 16-byte random salt, so two pushes of the same text never look alike.
`encrypt` accepts a fixed key and salt only so the RFC 8291 Appendix A vector can
be reproduced byte for byte.

`decrypt` is the browser's side. The Web Push emulator uses it to show tests
what a device would read; it accepts any record size and record count, as
RFC 8188 allows, though Clarion itself always sends one record.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RECORD_SIZE = 4096
"""The conventional record size; one record holds the whole push."""

HEADER_SIZE = 16 + 4 + 1 + 65
"""salt, rs, idlen and the 65-byte sender key: 86 bytes."""

TAG_SIZE = 16
MAX_BODY = 4096
"""A push service must accept at least this many bytes of body (RFC 8030 §7.2)."""

MAX_PLAINTEXT = MAX_BODY - HEADER_SIZE - TAG_SIZE - 1
"""3993: the largest payload that still fits a 4096-byte body (1 byte of delimiter)."""

_LAST_RECORD = 0x02
_OTHER_RECORD = 0x01


class DecryptionError(ValueError):
    """The body is not a valid `aes128gcm` message for these keys."""


@dataclass(frozen=True, slots=True)
class Secrets:
    """The keying material RFC 8291 derives for one message (Appendix A names)."""

    ikm: bytes
    prk: bytes
    cek: bytes
    nonce: bytes


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without `=` padding (browsers omit it)."""
    stripped = text.strip().rstrip("=")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


def b64url_encode(data: bytes) -> str:
    """Encode base64url without padding, as Web Push keys are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_point(key: ec.EllipticCurvePublicKey) -> bytes:
    """The 65-byte uncompressed point (0x04 ‖ X ‖ Y)."""
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def load_public_point(point: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its uncompressed point; ValueError when off the curve."""
    if len(point) != 65 or point[0] != 0x04:
        raise ValueError("a P-256 public key is a 65-byte uncompressed point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def derive_secrets(
    ecdh_secret: bytes, auth_secret: bytes, ua_public: bytes, as_public: bytes, salt: bytes
) -> Secrets:
    """RFC 8291 §3.3-3.4 and RFC 8188 §2.2: two HKDF-SHA256 rounds, each one block."""
    prk_key = _hmac(auth_secret, ecdh_secret)
    key_info = b"WebPush: info\x00" + ua_public + as_public
    ikm = _hmac(prk_key, key_info + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    return Secrets(ikm=ikm, prk=prk, cek=cek, nonce=nonce)


def encrypt(
    plaintext: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    private_key: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
    record_size: int = RECORD_SIZE,
    padding: int = 0,
) -> bytes:
    """Encrypt one push for the subscription keys (`p256dh` point, `auth` secret).

    `private_key` and `salt` are fresh random values unless given (tests only).
    `padding` zero bytes after the delimiter hide the payload's length.
    Raises ValueError when the payload does not fit one record.
    """
    if len(plaintext) + 1 + padding + TAG_SIZE > record_size:
        raise ValueError(f"{len(plaintext)} bytes do not fit one {record_size}-byte record")
    if len(auth_secret) != 16:
        raise ValueError("the auth secret is 16 bytes")
    ua_key = load_public_point(ua_public)
    private_key = private_key or ec.generate_private_key(ec.SECP256R1())
    salt = salt if salt is not None else os.urandom(16)
    if len(salt) != 16:
        raise ValueError("the salt is 16 bytes")
    as_public = public_point(private_key.public_key())
    shared = private_key.exchange(ec.ECDH(), ua_key)
    secrets = derive_secrets(shared, auth_secret, ua_public, as_public, salt)
    record = plaintext + bytes([_LAST_RECORD]) + b"\x00" * padding
    ciphertext = AESGCM(secrets.cek).encrypt(secrets.nonce, record, None)
    header = salt + struct.pack("!IB", record_size, len(as_public)) + as_public
    return header + ciphertext


def decrypt(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """What the browser holding `ua_private` and `auth_secret` reads from `body`.

    Raises `DecryptionError` for a malformed header, a wrong key or a bad record.
    """
    if len(body) < 21:
        raise DecryptionError("body shorter than the aes128gcm header")
    salt = body[:16]
    record_size, id_length = struct.unpack("!IB", body[16:21])
    if record_size < 18:
        raise DecryptionError(f"record size {record_size} is below 18")
    as_public = body[21 : 21 + id_length]
    try:
        as_key = load_public_point(as_public)
    except ValueError as exc:
        raise DecryptionError(f"key id is not a P-256 public key: {exc}") from exc
    ua_public = public_point(ua_private.public_key())
    shared = ua_private.exchange(ec.ECDH(), as_key)
    secrets = derive_secrets(shared, auth_secret, ua_public, as_public, salt)
    return _open_records(body[21 + id_length :], record_size, secrets)


def _open_records(ciphertext: bytes, record_size: int, secrets: Secrets) -> bytes:
    if not ciphertext:
        raise DecryptionError("no records")
    cipher = AESGCM(secrets.cek)
    records = [ciphertext[i : i + record_size] for i in range(0, len(ciphertext), record_size)]
    plaintext = bytearray()
    for sequence, record in enumerate(records):
        nonce = bytes(
            a ^ b for a, b in zip(secrets.nonce, sequence.to_bytes(12, "big"), strict=True)
        )
        try:
            opened = cipher.decrypt(nonce, record, None)
        except InvalidTag as exc:
            raise DecryptionError(f"record {sequence} does not authenticate") from exc
        content = opened.rstrip(b"\x00")
        last = sequence == len(records) - 1
        expected = _LAST_RECORD if last else _OTHER_RECORD
        if not content or content[-1] != expected:
            raise DecryptionError(f"record {sequence} lacks its 0x{expected:02x} delimiter")
        plaintext += content[:-1]
    return bytes(plaintext)
