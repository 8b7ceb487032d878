"""OAuth token sources against the reusable fake token endpoint, over real sockets."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette

from clarion.clock import FakeClock
from clarion.emulators.oauth import OAuthIssuer
from clarion.emulators.recording import Fault
from clarion.emulators.server import EmulatorServer
from clarion.providers.base import HttpRequest, InvalidCredentials, Transport, TransportError
from clarion.providers.httpx_transport import HttpxTransport
from clarion.providers.oauth import (
    JWT_BEARER_GRANT,
    ClientCredentialsTokenSource,
    ServiceAccount,
    ServiceAccountTokenSource,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TRANSPORTS = ["httpx"]
if importlib.util.find_spec("clarion.providers.curl_transport") is not None:
    TRANSPORTS.append("curl")


def make_transport(kind: str) -> Transport:
    if kind == "curl":
        from clarion.providers.curl_transport import CurlTransport

        return CurlTransport()  # type: ignore[no-any-return]
    return HttpxTransport()


@pytest.fixture(params=TRANSPORTS)
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    made = make_transport(request.param)
    yield made
    await made.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def issuer_server(clock: FakeClock) -> AsyncIterator[tuple[OAuthIssuer, str]]:
    issuer = OAuthIssuer(clock=clock)
    issuer.add_client("client-1", "s3cret")
    async with EmulatorServer(Starlette(routes=[issuer.route("/token")])) as server:
        yield issuer, server.url + "/token"


def rsa_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def account_json(uri: str, private_pem: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "kid-1",
        "private_key": private_pem,
        "client_email": "push@demo-project.iam.gserviceaccount.com",
        "client_id": "1234",
        "token_uri": uri,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def client_source(
    transport: Transport,
    url: str,
    clock: FakeClock,
    secret: str = "s3cret",  # noqa: S107
) -> ClientCredentialsTokenSource:
    return ClientCredentialsTokenSource(
        transport,
        token_url=url,
        client_id="client-1",
        client_secret=secret,
        scope="messaging:push",
        clock=clock,
    )


async def test_client_credentials_token_is_accepted_by_the_issuer(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    issuer, url = issuer_server
    token = await client_source(transport, url, clock).token()
    assert issuer.check(f"Bearer {token}")
    assert issuer.subject(f"Bearer {token}") == "client-1"
    assert not issuer.check("Bearer forged")


async def test_token_is_cached_until_margin_before_expiry(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    issuer, url = issuer_server
    source = client_source(transport, url, clock)
    first = await source.token()
    for _ in range(20):
        assert await source.token() == first
    clock.advance(3600 - 61)
    assert await source.token() == first
    clock.advance(2)  # now within the 60 s margin
    second = await source.token()
    assert second != first
    assert issuer.token_requests == 2
    assert issuer.check(f"Bearer {second}")


async def test_fifty_concurrent_callers_share_one_fetch(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    issuer, url = issuer_server
    source = client_source(transport, url, clock)
    tokens = await asyncio.gather(*(source.token() for _ in range(50)))
    assert len(set(tokens)) == 1
    assert issuer.token_requests == 1


async def test_invalidate_after_401_fetches_a_new_token_once(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    issuer, url = issuer_server
    source = client_source(transport, url, clock)
    old = await source.token()
    issuer.expire_all()
    assert not issuer.check(f"Bearer {old}")
    source.invalidate(old)
    new = await source.token()
    source.invalidate(old)  # a late 401 for the old token keeps the new one
    assert await source.token() == new
    assert issuer.token_requests == 2


async def test_wrong_client_secret_is_invalid_credentials(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    _issuer, url = issuer_server
    with pytest.raises(InvalidCredentials, match="invalid_client"):
        await client_source(transport, url, clock, secret="wrong").token()


async def test_token_endpoint_5xx_is_a_transport_error(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    issuer, url = issuer_server
    issuer.faults.set_all(Fault(status=503, body={"error": "temporarily_unavailable"}, times=1))
    source = client_source(transport, url, clock)
    with pytest.raises(TransportError, match="503"):
        await source.token()
    assert await source.token()  # the fault was one-shot; the failure was not cached


async def test_unreachable_token_endpoint_is_a_transport_error(
    transport: Transport, clock: FakeClock
) -> None:
    async with EmulatorServer(Starlette()) as server:
        url = server.url + "/token"
    with pytest.raises(TransportError):
        await client_source(transport, url, clock).token()


async def test_service_account_assertion_verifies_with_pyjwt(
    transport: Transport, clock: FakeClock
) -> None:
    private, public = rsa_pem()
    account = ServiceAccount.from_json(json.dumps(account_json("https://o.test/token", private)))
    source = ServiceAccountTokenSource(transport, service_account=account, scope=SCOPE, clock=clock)
    assertion = source.assertion()
    claims = jwt.decode(
        assertion,
        public,
        algorithms=["RS256"],
        audience="https://o.test/token",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert jwt.get_unverified_header(assertion)["kid"] == "kid-1"
    assert claims["iss"] == account.client_email
    assert claims["scope"] == SCOPE
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["iat"] == int(clock.now().timestamp())


async def test_service_account_token_is_granted_and_refreshed(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    issuer, url = issuer_server
    private, public = rsa_pem()
    account = ServiceAccount.from_json(account_json(url, private))
    issuer.add_service_account(account.client_email, public)
    source = ServiceAccountTokenSource(transport, service_account=account, scope=SCOPE, clock=clock)
    token = await source.token()
    assert issuer.subject(f"Bearer {token}") == account.client_email
    clock.advance(3600 - 299)
    assert await source.token() != token
    assert issuer.token_requests == 2


async def test_assertion_signed_by_another_key_is_refused(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    issuer, url = issuer_server
    private, _public = rsa_pem()
    _other_private, other_public = rsa_pem()
    account = ServiceAccount.from_json(account_json(url, private))
    issuer.add_service_account(account.client_email, other_public)
    source = ServiceAccountTokenSource(transport, service_account=account, scope=SCOPE, clock=clock)
    with pytest.raises(InvalidCredentials, match="invalid_grant"):
        await source.token()


async def test_issuer_refuses_assertion_for_another_audience(
    transport: Transport, issuer_server: tuple[OAuthIssuer, str], clock: FakeClock
) -> None:
    issuer, url = issuer_server
    private, public = rsa_pem()
    elsewhere = ServiceAccount.from_json(account_json("https://elsewhere.test/token", private))
    issuer.add_service_account(elsewhere.client_email, public)
    source = ServiceAccountTokenSource(
        transport, service_account=elsewhere, scope=SCOPE, clock=clock
    )
    form = urlencode({"grant_type": JWT_BEARER_GRANT, "assertion": source.assertion()})
    headers = (("content-type", "application/x-www-form-urlencoded"),)
    refused = await transport.request(HttpRequest("POST", url, headers, form.encode()))
    assert refused.status == 400
    assert json.loads(refused.body)["error"] == "invalid_grant"
    assert "audience" in json.loads(refused.body)["error_description"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_email": None}, "client_email"),
        ({"private_key_id": ""}, "private_key_id"),
        ({"token_uri": None}, "token_uri"),
        ({"project_id": 7}, "project_id"),
        ({"type": "authorized_user"}, "type"),
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"},
            "private_key",
        ),
        ({"token_uri": "oauth2.googleapis.com/token"}, "token_uri"),
    ],
)
def test_bad_service_account_json_names_the_field(changes: dict[str, Any], field: str) -> None:
    private, _public = rsa_pem()
    with pytest.raises(InvalidCredentials, match=f"'{field}'"):
        ServiceAccount.from_json(
            json.dumps(account_json("https://o.test/token", private, **changes))
        )


def test_service_account_with_an_ec_key_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(InvalidCredentials, match="'private_key' is not an RSA key"):
        ServiceAccount.from_json(account_json("https://o.test/token", pem))


def test_service_account_that_is_not_json_is_invalid() -> None:
    with pytest.raises(InvalidCredentials, match="not JSON"):
        ServiceAccount.from_json("{nope")


def test_service_account_repr_hides_the_private_key() -> None:
    private, _public = rsa_pem()
    account = ServiceAccount.from_json(account_json("https://o.test/token", private))
    assert "PRIVATE" not in repr(account)
