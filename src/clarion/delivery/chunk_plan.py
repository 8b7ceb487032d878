"""One chunk of an audience decided: its devices grouped by the delivery they get.

The respect rules depend on a handful of a device's facts (consent, active,
time zone, its user's preferences), and a campaign's devices mostly share a
few outcomes: sent now, deferred to the end of quiet hours in one of a few
dozen UTC offsets, or suppressed for one of a few reasons. So the planner
decides once per distinct situation and moves devices as lists: per device
there is one dictionary lookup and one append, and the store writes each
group's rows without looking at them one by one (`store.plan_writes`).
A throttled campaign is the exception: its waves are counted device by
device, in id order, as they always were.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from clarion.delivery.rules import Decision, NotificationRules, RecipientFacts
from clarion.model.notification import NotificationSpec
from clarion.model.preferences import UserPreferences
from clarion.model.schedule import PlanStatus
from clarion.store.notifications import DeliveryStatus
from clarion.store.plan_writes import DeliveryGroup
from clarion.store.queue import NewJob

SEND_JOB = "send"

Situation = tuple[str, str, bool, str | None, str | None]
"""What a device's delivery depends on: platform, consent, active, time zone and,
when the device's user has preferences, the user (else None)."""


class Throttle:
    """Spreads a campaign to at most `throttle_per_minute` sends a minute, per wave.

    A wave is the deliveries due at the same time: the immediate send, or
    one time zone's local-time slot, so a throttled local-time campaign is
    throttled within each zone's wave. The counts live in the notification's
    `plan_state`, written with each chunk, so a resumed planner continues them.
    """

    def __init__(self, spec: NotificationSpec, saved: Mapping[str, Any] | None) -> None:
        self.per_minute = spec.schedule.throttle_per_minute
        self.send_at = spec.schedule.send_at
        self.state: dict[str, int] | None = (
            dict((saved or {}).get("throttle", {})) if self.per_minute else None
        )

    def spread(self, decision: Decision, now: datetime) -> Decision:
        if self.state is None or self.per_minute is None or decision.due_at is None:
            return decision
        wave = self.send_at if decision.due_at <= now else job_due(decision.due_at, now)
        key = wave.isoformat()
        position = self.state.get(key, 0)
        self.state[key] = position + 1
        due = max(decision.due_at, wave + timedelta(minutes=position // self.per_minute))
        status = PlanStatus.SCHEDULED if due > now else decision.status
        return Decision(status, decision.reason, due)


def job_due(due: datetime, now: datetime) -> datetime:
    """When the job carrying a delivery due at `due` runs: at once, or on the next minute.

    Rounding up, never down, keeps a delivery from going before its time
    (the end of someone's quiet hours); grouping by minute keeps a local-time
    campaign to a few jobs per time zone instead of one per device.
    """
    if due <= now:
        return now
    rounded = due.replace(second=0, microsecond=0)
    return rounded if rounded == due else rounded + timedelta(minutes=1)


class ChunkDecider:
    """A chunk's decisions, remembered across its pages (they share one `now`).

    Each situation is routed once to a slot, a (platform, decision) pair;
    after that a device costs a dictionary lookup and an append.
    """

    def __init__(self, rules: NotificationRules, now: datetime, throttle: Throttle) -> None:
        self.rules = rules
        self.now = now
        self.throttle = throttle
        self._route: dict[Situation, int] = {}
        self._decisions: dict[tuple[str, bool, str | None, str | None], Decision] = {}
        self._slots: list[tuple[str, Decision]] = []
        self._slot_of: dict[tuple[str, Decision], int] = {}

    def groups(
        self, page: Iterable[Sequence[Any]], prefs: Mapping[str, UserPreferences]
    ) -> list[DeliveryGroup]:
        """The deliveries of a page of `(id, platform, consent, active, timezone, user_id)` rows.

        Each group's devices stay in page (id) order.
        """
        if self.throttle.state is not None:
            return self._throttled(page, prefs)
        route = self._route
        lists: list[list[str]] = [[] for _ in self._slots]
        for device_id, platform, consent, active, timezone, user_id in page:
            situation = (platform, consent, active, timezone, user_id if user_id in prefs else None)
            slot = route.get(situation)
            if slot is None:
                slot = route[situation] = self._slot(platform, self._decide(situation, prefs))
                lists.extend([] for _ in range(len(self._slots) - len(lists)))
            lists[slot].append(device_id)
        return [_group(*self._slots[slot], ids) for slot, ids in enumerate(lists) if ids]

    def _throttled(
        self, page: Iterable[Sequence[Any]], prefs: Mapping[str, UserPreferences]
    ) -> list[DeliveryGroup]:
        buckets: dict[tuple[str, Decision], list[str]] = defaultdict(list)
        for device_id, platform, consent, active, timezone, user_id in page:
            situation = (platform, consent, active, timezone, user_id if user_id in prefs else None)
            decision = self.throttle.spread(self._decide(situation, prefs), self.now)
            buckets[(platform, decision)].append(device_id)
        return [_group(platform, decision, ids) for (platform, decision), ids in buckets.items()]

    def _slot(self, platform: str, decision: Decision) -> int:
        key = (platform, decision)
        slot = self._slot_of.get(key)
        if slot is None:
            slot = self._slot_of[key] = len(self._slots)
            self._slots.append(key)
        return slot

    def _decide(self, situation: Situation, prefs: Mapping[str, UserPreferences]) -> Decision:
        facts = situation[1:]
        decision = self._decisions.get(facts)
        if decision is None:
            decision = self._decisions[facts] = _decide(self.rules, situation, prefs, self.now)
        return decision


def plan_groups(
    rules: NotificationRules,
    page: Iterable[Sequence[Any]],
    prefs: Mapping[str, UserPreferences],
    now: datetime,
    throttle: Throttle,
) -> list[DeliveryGroup]:
    """One page decided on its own (`ChunkDecider` remembers across a chunk's pages)."""
    return ChunkDecider(rules, now, throttle).groups(page, prefs)


def _decide(
    rules: NotificationRules,
    situation: Situation,
    prefs: Mapping[str, UserPreferences],
    now: datetime,
) -> Decision:
    _platform, consent, active, timezone, user_id = situation
    preferences = prefs.get(user_id) if user_id is not None else None
    return rules.decide(RecipientFacts("", consent, active, timezone, user_id, preferences), now)


def _group(platform: str, decision: Decision, device_ids: list[str]) -> DeliveryGroup:
    status = STATUS[decision.status].value
    return DeliveryGroup(platform, status, decision.reason, decision.due_at, device_ids)


def send_jobs(
    app_id: str,
    notification_id: str,
    groups: Iterable[DeliveryGroup],
    now: datetime,
    batch: int,
) -> list[NewJob]:
    """One send job per platform and job time (`job_due`), up to `batch` devices each."""
    waves: dict[tuple[str, datetime], list[str]] = defaultdict(list)
    for group in groups:
        if group.due_at is not None:
            waves[(group.platform, job_due(group.due_at, now))].extend(group.device_ids)
    jobs = []
    for (platform, due), ids in waves.items():
        ids.sort()
        for i in range(0, len(ids), batch):
            payload = {"notification_id": notification_id, "platform": platform}
            jobs.append(NewJob(SEND_JOB, app_id, {**payload, "devices": ids[i : i + batch]}, due))
    return jobs


STATUS = {
    PlanStatus.DUE: DeliveryStatus.QUEUED,
    PlanStatus.SCHEDULED: DeliveryStatus.SCHEDULED,
    PlanStatus.SUPPRESSED: DeliveryStatus.SUPPRESSED,
    PlanStatus.EXPIRED: DeliveryStatus.EXPIRED,
}
