"""RFC 8291 encryption, checked against the RFC's own example and against http_ece."""

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.providers.webpush_crypto import (
    MAX_BODY,
    MAX_PLAINTEXT,
    DecryptionError,
    b64url_decode,
    decrypt,
    derive_secrets,
    encrypt,
    public_point,
)

# RFC 8291 Appendix A (also PROTOCOLS.md §3.3).
PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
AS_PUBLIC = (
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
IKM = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg"
PRK = "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc"
CEK = "oIhVW04MRdy2XN9CiKLxTg"
NONCE = "4h_95klXJ5E_qnoN"
MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzA"
    "C8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def _private(b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(b64), "big"), ec.SECP256R1())


def _subscriber() -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, public_point(key.public_key()), b"0123456789abcdef"


def test_rfc8291_appendix_a_message_is_reproduced_byte_for_byte() -> None:
    body = encrypt(
        PLAINTEXT,
        b64url_decode(UA_PUBLIC),
        b64url_decode(AUTH),
        private_key=_private(AS_PRIVATE),
        salt=b64url_decode(SALT),
    )
    assert len(body) == 144
    assert body == b64url_decode(MESSAGE)


def test_rfc8291_appendix_a_intermediate_secrets_match() -> None:
    shared = _private(AS_PRIVATE).exchange(
        ec.ECDH(),
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(UA_PUBLIC)),
    )
    secrets = derive_secrets(
        shared,
        b64url_decode(AUTH),
        b64url_decode(UA_PUBLIC),
        b64url_decode(AS_PUBLIC),
        b64url_decode(SALT),
    )
    assert secrets.ikm == b64url_decode(IKM)
    assert secrets.prk == b64url_decode(PRK)
    assert secrets.cek == b64url_decode(CEK)
    assert secrets.nonce == b64url_decode(NONCE)


def test_rfc8291_appendix_a_message_decrypts_with_the_user_agent_key() -> None:
    assert decrypt(b64url_decode(MESSAGE), _private(UA_PRIVATE), b64url_decode(AUTH)) == PLAINTEXT


def test_http_ece_decrypts_what_we_encrypt() -> None:
    key, point, auth = _subscriber()
    body = encrypt(b'{"title":"Hello"}', point, auth)
    plaintext = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
    assert plaintext == b'{"title":"Hello"}'


def test_http_ece_decrypts_a_padded_message_of_the_same_text() -> None:
    key, point, auth = _subscriber()
    body = encrypt(b"short", point, auth, padding=100)
    assert len(body) == 86 + 5 + 1 + 100 + 16
    plaintext = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
    assert plaintext == b"short"


def test_each_message_gets_a_fresh_ephemeral_key_and_salt() -> None:
    _key, point, auth = _subscriber()
    first, second = encrypt(b"same", point, auth), encrypt(b"same", point, auth)
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # sender's public key
    assert first[16:21] == second[16:21] == b"\x00\x00\x10\x00\x41"  # rs=4096, idlen=65


def test_the_largest_plaintext_fills_exactly_a_4096_byte_body() -> None:
    key, point, auth = _subscriber()
    body = encrypt(b"x" * MAX_PLAINTEXT, point, auth)
    assert MAX_PLAINTEXT == 3993
    assert len(body) == MAX_BODY
    assert decrypt(body, key, auth) == b"x" * MAX_PLAINTEXT
    assert len(encrypt(b"x" * (MAX_PLAINTEXT + 1), point, auth)) == MAX_BODY + 1


def test_a_payload_larger_than_one_record_is_refused() -> None:
    _key, point, auth = _subscriber()
    with pytest.raises(ValueError, match="do not fit"):
        encrypt(b"x" * 4080, point, auth)


def test_our_decrypt_reads_http_ece_multi_record_bodies() -> None:
    key, point, auth = _subscriber()
    sender = ec.generate_private_key(ec.SECP256R1())
    text = b"a message split across several small records" * 3
    body = http_ece.encrypt(
        text, private_key=sender, dh=point, auth_secret=auth, rs=40, version="aes128gcm"
    )
    assert decrypt(body, key, auth) == text


def test_decrypting_with_the_wrong_auth_secret_fails() -> None:
    key, point, auth = _subscriber()
    body = encrypt(b"secret", point, auth)
    with pytest.raises(DecryptionError, match="authenticate"):
        decrypt(body, key, b"fedcba9876543210")


def test_a_truncated_body_is_not_decryptable() -> None:
    key, _point, auth = _subscriber()
    with pytest.raises(DecryptionError):
        decrypt(b"\x00" * 20, key, auth)


def test_a_point_off_the_curve_is_refused() -> None:
    with pytest.raises(ValueError):
        encrypt(b"x", b"\x04" + b"\x01" * 64, b"0123456789abcdef")
