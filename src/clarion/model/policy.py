"""Who may receive a push right now: the rules the planner and the sender share.

The sender re-applies them just before sending, so a revocation that lands
after planning still wins.
"""

from __future__ import annotations

from enum import StrEnum

from clarion.model.consent import ConsentStatus


class Suppression(StrEnum):
    """Why a delivery was not attempted (the `reason` of a suppressed delivery)."""

    NO_CONSENT = "no_consent"
    CATEGORY_OPT_OUT = "category_opt_out"
    FREQUENCY_CAP = "frequency_cap"
    QUIET_HOURS = "quiet_hours"
    INACTIVE_DEVICE = "inactive_device"


def device_suppression(consent: str, active: bool) -> Suppression | None:
    """Consent first (it is the person's word), then the device's own state."""
    try:
        allowed = ConsentStatus(consent).allows_sending
    except ValueError:
        allowed = False
    if not allowed:
        return Suppression.NO_CONSENT
    if not active:
        return Suppression.INACTIVE_DEVICE
    return None
