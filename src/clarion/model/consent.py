"""Consent: whether a person agreed to receive pushes on one device.

Only `granted` and `provisional` (iOS quiet delivery) may be sent to. Every
change is an append-only event; the ledger is the proof of opt-in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    PROVISIONAL = "provisional"
    DENIED = "denied"
    REVOKED = "revoked"

    @property
    def allows_sending(self) -> bool:
        return self in (ConsentStatus.GRANTED, ConsentStatus.PROVISIONAL)


DEFAULT_CONSENT = ConsentStatus.DENIED
"""A device registered without a consent answer receives nothing until one is recorded."""

SENDABLE_CONSENT = (ConsentStatus.GRANTED.value, ConsentStatus.PROVISIONAL.value)


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A requested change and where it came from (the request origin is added by the API)."""

    status: ConsentStatus
    source: str = "api"
    text_version: str | None = None
    client_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """Who asked: kept with each consent event as part of the proof."""

    ip: str | None = None
    user_agent: str | None = None


def subject_hash(salt: bytes, user_id: str) -> str:
    """A keyed hash of the app's user id, kept in consent events.

    The salt is per app, so the same user id in two apps does not link, and
    the hash survives the user's erasure: given the id again, the proof is
    found, but the ledger alone does not reveal it.
    """
    return hmac.new(salt, user_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One entry of the ledger; `subject_hash` stands for the user (see `subject_hash`)."""

    id: int
    app_id: str
    device_id: str
    platform: str
    subject_hash: str | None
    old_status: str | None
    new_status: str
    source: str
    text_version: str | None
    client_time: datetime | None
    server_time: datetime
    ip: str | None
    user_agent: str | None
