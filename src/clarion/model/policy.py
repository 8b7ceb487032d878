"""Who may receive a push right now: the rules the planner and the sender share.

The sender re-applies them just before sending, so a revocation that lands
after planning still wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from clarion.model.app import Category
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


def find_category(categories: Iterable[Category], name: str | None) -> Category | None:
    """The app's category called `name` (None when unnamed or no longer defined)."""
    if name is None:
        return None
    return next((category for category in categories if category.name == name), None)


def category_allows(category: Category | None, user_choices: Mapping[str, bool]) -> bool:
    """The recipient's own opt-in or opt-out wins; else the category's default applies.

    A notification without a category is not subject to category choices.
    """
    if category is None:
        return True
    return user_choices.get(category.name, category.default_opt_in)
