"""A reusable fake OAuth 2 token endpoint for the FCM, HMS, WNS and ADM emulators.

Each of those services first hands out an access token and then checks it on
every send. `OAuthIssuer` does both halves so every emulator behaves the same:

    issuer = OAuthIssuer(clock=clock)
    issuer.add_client("client-id", "secret")            # client-credentials grant
    issuer.add_service_account(email, public_key_pem)   # JWT-bearer grant (FCM)
    routes = [issuer.route("/token"), Route("/send", send)]
    ...
    async def send(request):
        if not issuer.check(request.headers.get("authorization")):
            return JSONResponse(..., status_code=401)

The token route accepts `grant_type=client_credentials` (id and secret as form
fields or HTTP Basic) and `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
(an RS256 assertion whose `iss` is a configured service account, verified with
its public key; `aud` must be this endpoint's URL and `exp - iat` at most an
hour). It answers `{"access_token", "expires_in", "token_type": "Bearer"}` with
random opaque tokens, or RFC 6749 errors (`invalid_client` 401,
`invalid_grant` / `unsupported_grant_type` / `invalid_request` 400).

Tests use `issuer.expire_all()` to force a refresh, `issuer.token_requests`
to count hits on the endpoint, and `issuer.faults` (a `FaultPlan`, key
`ANY_TOKEN`) to make the endpoint itself fail.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.clock import Clock, SystemClock
from clarion.emulators.recording import ANY_TOKEN, FaultPlan

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 3600


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token the issuer handed out."""

    subject: str
    scope: str | None
    expires_at: float


class OAuthError(Exception):
    """An RFC 6749 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class OAuthIssuer:
    """Issues and checks bearer tokens; one per emulator.

    `lifetime` is the `expires_in` granted; `clock` decides when tokens and
    assertions expire (share the test's `FakeClock` with the client under test).
    `scopes`, when given, is the set of scopes a request must ask for one of.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        lifetime: int = 3600,
        scopes: frozenset[str] | None = None,
        audience: str | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.lifetime = lifetime
        self.scopes = scopes
        self.audience = audience
        self.clients: dict[str, str] = {}
        self.service_accounts: dict[str, Any] = {}
        self.issued: dict[str, IssuedToken] = {}
        self.faults = FaultPlan()
        self.token_requests = 0
        """Requests that reached the token endpoint, answered or refused."""

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Accept this id/secret pair for the client-credentials grant."""
        self.clients[client_id] = client_secret

    def add_service_account(self, client_email: str, public_key_pem: str | bytes) -> None:
        """Accept JWT-bearer assertions from `client_email` signed by this key."""
        key = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        self.service_accounts[client_email] = key

    def issue(self, subject: str, scope: str | None = None) -> str:
        """Mint a token directly (tests that skip the token endpoint)."""
        token = secrets.token_urlsafe(32)
        expires_at = self.clock.now().timestamp() + self.lifetime
        self.issued[token] = IssuedToken(subject, scope, expires_at)
        return token

    def check(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header carries a live token from this issuer."""
        return self.subject(authorization) is not None

    def subject(self, authorization: str | None) -> str | None:
        """The client id or service account a live bearer token was issued to."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        issued = self.issued.get(token.strip())
        if issued is None or issued.expires_at <= self.clock.now().timestamp():
            return None
        return issued.subject

    def expire_all(self) -> None:
        """Make every issued token invalid, as if they had all expired."""
        self.issued.clear()

    def route(self, path: str = "/token") -> Route:
        """The token endpoint as a Starlette route."""
        return Route(path, self._endpoint, methods=["POST"])

    async def _endpoint(self, request: Request) -> Response:
        self.token_requests += 1
        fault = self.faults.take(ANY_TOKEN)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            return JSONResponse(fault.body, status_code=fault.status, headers=dict(fault.headers))
        # Parsed by hand: Starlette's form parser needs python-multipart, not a dependency.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            subject, scope = self._grant(request, form)
        except OAuthError as exc:
            headers = {"www-authenticate": "Basic"} if exc.status == 401 else {}
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description},
                status_code=exc.status,
                headers=headers,
            )
        token = self.issue(subject, scope)
        return JSONResponse(
            {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"},
            headers={"cache-control": "no-store"},
        )

    def _grant(self, request: Request, form: Mapping[str, str]) -> tuple[str, str | None]:
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(request, form)
        if grant == JWT_BEARER_GRANT:
            return self._jwt_bearer(str(request.url), form)
        if not grant:
            raise OAuthError("invalid_request", "grant_type is missing")
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _client_credentials(
        self, request: Request, form: Mapping[str, str]
    ) -> tuple[str, str | None]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = _basic_credentials(request.headers.get("authorization"))
        if basic is not None:
            client_id, secret = basic
        if not client_id or secret is None:
            raise OAuthError("invalid_client", "client authentication is missing", 401)
        expected = self.clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected, secret):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        scope = form.get("scope")
        self._check_scope(scope)
        return client_id, scope

    def _jwt_bearer(self, endpoint_url: str, form: Mapping[str, str]) -> tuple[str, str | None]:
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError("invalid_request", "assertion is missing")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_grant", f"assertion is not a JWT: {exc}") from exc
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self.service_accounts:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.")
        key = self.service_accounts[issuer]
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "Invalid JWT Signature.")
        audience = self.audience or endpoint_url.split("?")[0]
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=audience,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidAudienceError as exc:
            raise OAuthError("invalid_grant", f"Invalid JWT audience: {exc}") from exc
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.") from exc
        self._check_times(claims)
        scope = claims.get("scope")
        if not isinstance(scope, str):
            raise OAuthError("invalid_scope", "the assertion names no scope")
        self._check_scope(scope)
        return issuer, scope

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise OAuthError("invalid_grant", "iat and exp are required")
        if exp - iat > MAX_ASSERTION_LIFETIME:
            raise OAuthError("invalid_grant", "Invalid JWT: exp is more than 1 hour after iat")
        now = self.clock.now().timestamp()
        if exp <= now or iat > now + 60:
            raise OAuthError("invalid_grant", "Invalid JWT: Token must be a short-lived token")

    def _check_scope(self, scope: str | None) -> None:
        if self.scopes is None:
            return
        asked = set((scope or "").split())
        if not asked & self.scopes:
            raise OAuthError("invalid_scope", f"scope {scope!r} is not allowed")


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None
