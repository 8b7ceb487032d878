"""Sealing: AES-GCM bound to the app and provider, with a key id for rotation."""

import secrets

import pytest

from clarion.store.sealing import Sealer, SealError, sealed_key_id

KEY = secrets.token_bytes(32)
SECRET = b"-----BEGIN PRIVATE KEY-----\nsuper secret key material\n"


def test_sealed_value_opens_for_its_own_app_and_provider() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal(SECRET, app_id="app_a", provider="apns")
    assert SECRET not in sealed
    assert sealer.open(sealed, app_id="app_a", provider="apns") == SECRET


def test_sealed_value_moved_to_another_app_fails_to_open() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal(SECRET, app_id="app_a", provider="apns")
    with pytest.raises(SealError, match="another app or provider"):
        sealer.open(sealed, app_id="app_b", provider="apns")
    with pytest.raises(SealError):
        sealer.open(sealed, app_id="app_a", provider="fcm")


def test_each_seal_draws_a_fresh_nonce() -> None:
    sealer = Sealer(KEY)
    first = sealer.seal(SECRET, app_id="a", provider="fcm")
    second = sealer.seal(SECRET, app_id="a", provider="fcm")
    assert first != second
    assert first[5:17] != second[5:17]


def test_tampered_value_fails_to_open() -> None:
    sealer = Sealer(KEY)
    sealed = bytearray(sealer.seal(SECRET, app_id="a", provider="fcm"))
    sealed[-1] ^= 1
    with pytest.raises(SealError):
        sealer.open(bytes(sealed), app_id="a", provider="fcm")


def test_another_key_is_recognised_by_its_key_id() -> None:
    old, new = Sealer(KEY), Sealer(secrets.token_bytes(32))
    sealed = old.seal(SECRET, app_id="a", provider="hms")
    assert sealed_key_id(sealed) == old.key_id != new.key_id
    with pytest.raises(SealError, match="another secret key"):
        new.open(sealed, app_id="a", provider="hms")
    both = Sealer(secrets.token_bytes(32), previous=[KEY])
    assert both.open(sealed, app_id="a", provider="hms") == SECRET
    assert not both.is_current(sealed)


def test_errors_never_carry_key_or_plaintext() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal(SECRET, app_id="a", provider="apns")
    with pytest.raises(SealError) as caught:
        sealer.open(sealed, app_id="b", provider="apns")
    assert "secret key material" not in str(caught.value)
    assert KEY.hex() not in str(caught.value)
    assert "KEY" not in repr(sealer) and KEY.hex() not in repr(sealer)


def test_secret_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")


def test_json_configuration_round_trips() -> None:
    sealer = Sealer(KEY)
    config = {"private_key": "pem", "nested": {"a": [1, 2]}}
    sealed = sealer.seal_json(config, app_id="a", provider="fcm")
    assert sealer.open_json(sealed, app_id="a", provider="fcm") == config
