"""The closed set of things a push service can tell us about one push.

Every provider maps its responses onto exactly these; the pipeline acts on them
without knowing which provider answered:

- `Sent`: accepted by the push service.
- `Retry`: temporary (throttled, unavailable, connection lost); try again no
  sooner than `after` seconds when given.
- `InvalidToken`: the device is gone; `since` is when the service says it
  stopped being valid (APNs 410 `timestamp`), so a later re-registration wins.
- `TokenReplaced`: the service handed us the device's new token.
- `Rejected`: permanent for this push (bad payload, wrong topic); never retry.
- `AuthFailed`: our credential is wrong or revoked; pause the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Sent:
    provider_id: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class InvalidToken:
    reason: str
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class TokenReplaced:
    new_token: str


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


@dataclass(frozen=True, slots=True)
class AuthFailed:
    reason: str


Outcome = Sent | Retry | InvalidToken | TokenReplaced | Rejected | AuthFailed
