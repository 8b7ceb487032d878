"""Preference-link tokens and the page's language choice, without a browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clarion.web.i18n import CATALOGS, negotiate
from clarion.web.links import LinkError, LinkSigner

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SIGNER = LinkSigner(b"k" * 32)


def test_token_grants_exactly_its_app_and_user_until_it_expires() -> None:
    token = SIGNER.sign("app_1", "user-é/42", NOW, ttl=3600)
    link = SIGNER.verify(token, NOW + timedelta(minutes=59))
    assert (link.app_id, link.user_id) == ("app_1", "user-é/42")
    with pytest.raises(LinkError) as expired:
        SIGNER.verify(token, NOW + timedelta(hours=1))
    assert expired.value.reason == "expired"


@pytest.mark.parametrize("index", range(0, 90, 7))
def test_any_changed_character_makes_the_token_invalid(index: int) -> None:
    token = SIGNER.sign("app_1", "alice", NOW)
    flipped = "A" if token[index] != "A" else "B"
    forged = token[:index] + flipped + token[index + 1 :]
    with pytest.raises(LinkError) as refused:
        SIGNER.verify(forged, NOW)
    assert refused.value.reason == "invalid"


def test_token_signed_under_another_secret_is_invalid() -> None:
    token = LinkSigner(b"x" * 32).sign("app_1", "alice", NOW)
    with pytest.raises(LinkError):
        SIGNER.verify(token, NOW)


def test_form_nonce_is_bound_to_its_token() -> None:
    alice, bob = SIGNER.sign("app_1", "alice", NOW), SIGNER.sign("app_1", "bob", NOW)
    assert SIGNER.check_form_nonce(alice, SIGNER.form_nonce(alice))
    assert not SIGNER.check_form_nonce(bob, SIGNER.form_nonce(alice))


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE,en;q=0.5,fr;q=0.7", "fr"),
        ("de-DE", "en"),
        ("", "en"),
        ("fr;q=0, en", "en"),
        ("fr;q=bogus, en-GB", "en"),
    ],
)
def test_language_follows_accept_language(header: str, language: str) -> None:
    assert negotiate(header) == language


def test_every_language_has_every_phrase() -> None:
    for catalog in CATALOGS.values():
        assert set(catalog) == set(CATALOGS["en"])
