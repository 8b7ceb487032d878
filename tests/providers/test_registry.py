"""The provider registry: bodies validated per provider, providers built from sealed configs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clarion.clock import FakeClock
from clarion.model.content import Content
from clarion.model.message import Message, Recipient
from clarion.model.outcome import Rejected
from clarion.model.platform import Platform
from clarion.providers.base import HttpRequest, HttpResponse, Transport
from clarion.providers.outbound import GuardedProvider, OutboundPolicy
from clarion.providers.registry import (
    InvalidCredentialBody,
    build_provider,
    validate_credentials,
)
from tests.providers.credential_factories import PROVIDERS, body, certificate, secrets_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)
STRICT = OutboundPolicy()


class _Recorder:
    """A transport that records what it was built with and answers nothing."""

    def __init__(self, client_cert: tuple[Path, Path] | None, guard: Callable[[str], bool] | None):
        self.client_cert = client_cert
        self.guard = guard
        self.requests: list[HttpRequest] = []
        self.closed = False

    async def request(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return HttpResponse(500)

    async def aclose(self) -> None:
        self.closed = True


built: list[_Recorder] = []


def factory(
    *,
    client_cert: tuple[Path, Path] | None = None,
    address_guard: Callable[[str], bool] | None = None,
) -> Transport:
    transport = _Recorder(client_cert, address_guard)
    built.append(transport)
    return transport


@pytest.mark.parametrize("provider", PROVIDERS)
def test_validated_config_builds_a_guarded_provider_of_the_platform(provider: str) -> None:
    data = body(provider, NOW)
    validated = validate_credentials(Platform(provider), data, policy=STRICT, now=NOW)
    built_provider = build_provider(
        provider, validated.config, transport_factory=factory, clock=FakeClock()
    )
    assert built_provider.platform is Platform(provider)
    guard = built[-1].guard
    assert guard is not None and not guard("127.0.0.1") and guard("93.184.215.14")
    for secret in secrets_of(provider, data):
        assert secret not in repr(validated)
        assert secret not in str(validated.public)


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidCredentialBody, match="body"):
        validate_credentials(Platform.WNS, ["x"], policy=STRICT, now=NOW)  # type: ignore[arg-type]


async def test_apns_certificate_files_exist_while_the_transport_lives_and_go_with_it() -> None:
    cert, key = certificate(NOW, days=100)
    data: dict[str, Any] = {"auth": "certificate", "certificate": cert, "private_key": key}
    data["bundle_id"] = "com.example.app"
    validated = validate_credentials(Platform.APNS, data, policy=STRICT, now=NOW)
    assert validated.warnings == [] and validated.expires_at is not None
    provider = build_provider(
        Platform.APNS, validated.config, transport_factory=factory, clock=FakeClock()
    )
    paths = built[-1].client_cert
    assert paths is not None and paths[0].read_text().strip() == cert.strip()
    assert paths[1].stat().st_mode & 0o777 == 0o600
    await provider.transport.aclose()
    assert built[-1].closed and not paths[0].exists() and not paths[1].exists()


async def test_wns_channel_off_notify_windows_com_is_rejected_unsent() -> None:
    validated = validate_credentials(Platform.WNS, body("wns"), policy=STRICT, now=NOW)
    provider = build_provider(
        Platform.WNS, validated.config, transport_factory=factory, clock=FakeClock()
    )
    assert isinstance(provider, GuardedProvider)
    recipient = Recipient("d", Platform.WNS, "https://wns.example.net/?token=abc")
    outcome = await provider.send(Message(Content(title="Hi"), uuid.uuid4()), recipient)
    assert isinstance(outcome, Rejected) and "allowed push hosts" in outcome.reason
    assert built[-1].requests == []


def test_blackberry_credentials_validate_and_build_a_pap_provider() -> None:
    data = {"endpoint": "https://pushapi.eval.blackberry.com", "application_id": "1-abc"}
    data["password"] = "bb-password-1234"
    validated = validate_credentials(Platform.BLACKBERRY, data, policy=STRICT, now=NOW)
    assert validated.public["password"] == "[redacted]"
    provider = build_provider(
        "blackberry", validated.config, transport_factory=factory, clock=FakeClock()
    )
    assert provider.platform is Platform.BLACKBERRY


def test_expired_and_soon_expiring_certificates() -> None:
    soon, soon_key = certificate(NOW, days=5)
    data = {"certificate": soon, "private_key": soon_key, "bundle_id": "com.example.app"}
    validated = validate_credentials(Platform.APNS, data, policy=STRICT, now=NOW)
    assert "within 30 days" in validated.warnings[0]
    old, old_key = certificate(NOW, days=-3)
    with pytest.raises(InvalidCredentialBody) as caught:
        validate_credentials(
            Platform.APNS,
            {"certificate": old, "private_key": old_key, "bundle_id": "com.example.app"},
            policy=STRICT,
            now=NOW,
        )
    assert [e.field for e in caught.value.errors] == ["certificate"]
    assert "expired on" in caught.value.errors[0].message
