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

from clarion.model.app import App, Category
from clarion.model.caps import SentPush, cap_blocking, counts_toward_caps, effective_caps
from clarion.model.notification import NotificationSpec
from clarion.model.policy import (
    Suppression,
    category_allows,
    device_suppression,
    find_category,
)
from clarion.model.preferences import FrequencyCap, UserPreferences
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


class NotificationRules:
    def __init__(self, app: App, spec: NotificationSpec) -> None:
        self.app = app
        self.spec = spec
        self.category: Category | None = find_category(app.categories, spec.category)
        self._memo: dict[tuple[object, ...], Decision] = {}
        self._memo_now: datetime | None = None

    def caps_apply(self, prefs: UserPreferences | None) -> bool:
        """Whether caps can hold this push back for this recipient (else skip the bookkeeping)."""
        return counts_toward_caps(self.category) and bool(self.caps_for(prefs))

    def decide(self, recipient: RecipientFacts, now: datetime) -> Decision:
        """The decision for one recipient, memoized by everything it depends on.

        Recipients of a campaign mostly share a handful of situations (same
        zone, no preferences of their own), so a million-device plan computes
        each situation once instead of once per device.
        """
        # Decided at the minute: recipients planned within the same minute share the
        # memo (across chunks too), and a minute's floor never sends late.
        instant = now.replace(second=0, microsecond=0)
        if instant != self._memo_now:
            self._memo.clear()
            self._memo_now = instant
        prefs = recipient.preferences
        key = (
            recipient.consent,
            recipient.active,
            recipient.timezone,
            None
            if prefs is None
            else (
                prefs.timezone,
                prefs.quiet_hours_set,
                prefs.quiet_hours,
                prefs.categories.get(self.category.name) if self.category else None,
            ),
        )
        decision = self._memo.get(key)
        if decision is None:
            decision = self._memo[key] = self._decide(recipient, instant)
        if decision.status is PlanStatus.SCHEDULED and decision.due_at and decision.due_at <= now:
            return Decision(PlanStatus.DUE, decision.reason, decision.due_at)
        return decision

    def _decide(self, recipient: RecipientFacts, now: datetime) -> Decision:
        suppression = device_suppression(recipient.consent, recipient.active)
        if suppression is not None:
            return Decision(PlanStatus.SUPPRESSED, suppression.value)
        prefs = recipient.preferences
        if not category_allows(self.category, prefs.categories if prefs else {}):
            return Decision(PlanStatus.SUPPRESSED, Suppression.CATEGORY_OPT_OUT.value)
        plan = self.plan(recipient, now)
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
