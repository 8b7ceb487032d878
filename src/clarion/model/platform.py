"""The push platforms Clarion speaks to."""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    """A push service; the value is the name used in the API and the store."""

    APNS = "apns"
    FCM = "fcm"
    WEBPUSH = "webpush"
    WNS = "wns"
    ADM = "adm"
    HMS = "hms"
    BLACKBERRY = "blackberry"
