"""The respect rules for one notification, applied to each recipient.

The planner asks `decide` for every device of a chunk; the sender asks it
again just before sending, with the current clock and the preferences as
they are now, so an opt-out, a consent revocation or a new quiet-hours
window that lands after planning still wins. All judgement lives in
`clarion.model` (policy, schedule, caps); this module only gathers what a
recipient's decision needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from clarion.model.app import App, Category
from clarion.model.caps import SentPush, cap_blocking, counts_toward_caps, effective_caps
from clarion.model.notification import NotificationSpec
from clarion.model.policy import (
    Suppression,
    category_allows,
    device_suppression,
    find_category,
)
from clarion.model.preferences import FrequencyCap, QuietHours, UserPreferences
from clarion.model.schedule import (
    DeliveryPlan,
    PlanStatus,
    effective_quiet_hours,
    plan_delivery,
    recipient_zone,
)


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    """What the rules need to know about one device and its user."""

    device_id: str
    consent: str
    active: bool
    timezone: str | None
    user_id: str | None
    preferences: UserPreferences | None


@dataclass(frozen=True, slots=True)
class Decision:
    """Send at `due_at` (now or later), or not at all (`suppressed`/`expired` with a reason)."""

    status: PlanStatus
    reason: str | None = None
    due_at: datetime | None = None


_CATEGORY_OPT_OUT = Decision(PlanStatus.SUPPRESSED, Suppression.CATEGORY_OPT_OUT.value)


class NotificationRules:
    def __init__(self, app: App, spec: NotificationSpec) -> None:
        self.app = app
        self.spec = spec
        self.category: Category | None = find_category(app.categories, spec.category)
        self._time_sensitive = bool(self.category and self.category.time_sensitive)
        self._memo: dict[tuple[str, QuietHours | None], Decision] = {}
        self._memo_now: datetime | None = None
        self._suppressed: dict[tuple[str, bool], Decision | None] = {}

    def caps_apply(self, prefs: UserPreferences | None) -> bool:
        """Whether caps can hold this push back for this recipient (else skip the bookkeeping)."""
        return counts_toward_caps(self.category) and bool(self.caps_for(prefs))

    def decide(self, recipient: RecipientFacts, now: datetime) -> Decision:
        """The decision for one recipient, memoized by everything it depends on.

        In order: consent and the device's state (which alone decide a
        suppression), the category choice, then the schedule in the
        recipient's zone under their quiet hours. Only the last is worth
        remembering, and it depends on nothing but the zone and the quiet
        hours, so a million-device plan computes it once per zone and window
        instead of once per device.
        """
        suppressed = self._device_state(recipient.consent, recipient.active)
        if suppressed is not None:
            return suppressed
        prefs = recipient.preferences
        if not category_allows(self.category, prefs.categories if prefs else {}):
            return _CATEGORY_OPT_OUT
        # Decided at the minute: recipients planned within the same minute share the
        # memo (across chunks too), and a minute's floor never sends late.
        instant = now.replace(second=0, microsecond=0)
        if instant != self._memo_now:
            self._memo.clear()
            self._memo_now = instant
        zone = recipient_zone(
            prefs.timezone if prefs else None, recipient.timezone, self.app.default_timezone
        )
        quiet = effective_quiet_hours(self.app.quiet_hours, prefs)
        key = (zone.key, quiet)
        decision = self._memo.get(key)
        if decision is None:
            decision = self._memo[key] = self._scheduled(zone, quiet, instant)
        if decision.status is PlanStatus.SCHEDULED and decision.due_at and decision.due_at <= now:
            return Decision(PlanStatus.DUE, decision.reason, decision.due_at)
        return decision

    def _device_state(self, consent: str, active: bool) -> Decision | None:
        key = (consent, active)
        if key not in self._suppressed:
            suppression = device_suppression(consent, active)
            self._suppressed[key] = (
                None if suppression is None else Decision(PlanStatus.SUPPRESSED, suppression.value)
            )
        return self._suppressed[key]

    def _scheduled(self, zone: ZoneInfo, quiet: QuietHours | None, now: datetime) -> Decision:
        plan = plan_delivery(
            self.spec.schedule,
            now=now,
            zone=zone,
            quiet=quiet,
            time_sensitive=self._time_sensitive,
            expires_at=self.spec.expires_at,
        )
        if plan.status is PlanStatus.SUPPRESSED:
            return Decision(plan.status, plan.reason.value if plan.reason else None)
        if plan.status is PlanStatus.EXPIRED:
            return Decision(plan.status, "ttl")
        return Decision(plan.status, None, plan.due_at)

    def plan(self, recipient: RecipientFacts, now: datetime) -> DeliveryPlan:
        prefs = recipient.preferences
        zone = recipient_zone(
            prefs.timezone if prefs else None, recipient.timezone, self.app.default_timezone
        )
        return plan_delivery(
            self.spec.schedule,
            now=now,
            zone=zone,
            quiet=effective_quiet_hours(self.app.quiet_hours, prefs),
            time_sensitive=bool(self.category and self.category.time_sensitive),
            expires_at=self.spec.expires_at,
        )

    def caps_for(self, prefs: UserPreferences | None) -> tuple[FrequencyCap, ...]:
        return effective_caps(self.app.caps, prefs.caps if prefs else None)

    def over_cap(
        self, prefs: UserPreferences | None, recent: list[SentPush], now: datetime
    ) -> FrequencyCap | None:
        """The cap one more push would break for this recipient, if any."""
        return cap_blocking(self.caps_for(prefs), self.category, recent, now, self.app.categories)
