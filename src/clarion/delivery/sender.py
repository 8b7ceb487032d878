"""The sender: runs one send job — a batch of one notification's deliveries on one platform.

Just before sending it re-reads consent, `active` and the notification's
state for the whole batch in one query, so a revocation or a cancel that
landed after planning still stops the push. The pushes go to the provider
as one batch (`clarion.providers.batch`: in one go where the provider can,
else through a small pool); the outcomes, device changes (deactivation, new
token) and follow-up jobs (retries) are written in one transaction that also
finishes the job. Deliveries are only ever moved out of `queued`, so a job
that runs twice (its worker died after sending) changes nothing the second
time but for the pushes that were in flight.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from clarion.clock import Clock
from clarion.delivery.lookup import Missing, Paused, ProviderLookup, ProviderState
from clarion.delivery.metrics import DeliveryMetrics
from clarion.delivery.outcomes import PENDING, OutcomeWriter, Pending
from clarion.delivery.planner import SEND_JOB, job_due, load_spec
from clarion.delivery.rules import NotificationRules, RecipientFacts
from clarion.model.app import App
from clarion.model.audience import Audience, AudienceKind
from clarion.model.caps import SentPush
from clarion.model.consent import subject_hash
from clarion.model.content import Content
from clarion.model.message import Message, Recipient, WebPushSubscription
from clarion.model.notification import NotificationSpec
from clarion.model.platform import Platform
from clarion.model.policy import Suppression
from clarion.model.preferences import UserPreferences
from clarion.model.schedule import PlanStatus
from clarion.model.template import device_values, personalize
from clarion.providers.batch import Push, send_all
from clarion.store import caps, queue
from clarion.store.apps import get_app
from clarion.store.db import Database
from clarion.store.notifications import (
    DeliveryStatus,
    NotificationRecord,
    NotificationStatus,
    get_notification,
)
from clarion.store.schema import devices
from clarion.store.schema_pipeline import deliveries
from clarion.store.users import preferences_for

PAUSED_RECHECK = timedelta(seconds=30)
RESOLVED = Audience(AudienceKind.DEVICES, ())
"""What a cached spec keeps of its audience: nothing (the planner resolved it)."""
PUSH_NAMESPACE = uuid.UUID("5b0c7a4e-8d7e-4f59-9a43-2f3d0b6c9e11")


def cap_subject(app: App, user_id: str | None, device_id: str) -> str:
    """Whom a cap counts for: the user (as a keyed hash, never the raw id), else the device."""
    return f"u:{subject_hash(app.subject_salt, user_id)}" if user_id else f"d:{device_id}"


def _templated(content: Content) -> bool:
    return any("{{" in text for text in (content.title, content.subtitle, content.body) if text)


_NAMESPACE_BYTES = PUSH_NAMESPACE.bytes
_VERSION_BITS_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5_BITS = (5 << 76) | (0x8000 << 48)


def push_id(notification_id: str, device_id: str) -> uuid.UUID:
    """Stable per delivery: the same id on every retry (APNs `apns-id`, PAP push-id).

    `uuid.uuid5(PUSH_NAMESPACE, "<notification>/<device>")`, computed without
    its per-call import and keyword checks (half the cost, once per push).
    """
    name = f"{notification_id}/{device_id}".encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()
    value = int.from_bytes(digest[:16]) & _VERSION_BITS_CLEAR | _VERSION_5_BITS
    # `UUID(int=...)` re-checks its five keyword forms and the range: a 128-bit value
    # with the version bits just set needs none of that. The fields are UUID's own slots.
    made = _new_object(uuid.UUID)
    _set_slot(made, "int", value)
    _set_slot(made, "is_safe", _SAFE_UNKNOWN)
    return made


_new_object = object.__new__
_set_slot = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


@dataclass(slots=True)
class BatchRow:
    """A queued delivery with the device as it is now."""

    device_id: str
    attempts: int
    token: str | None
    push_keys: dict[str, str] | None
    locale: str | None
    consent: str | None
    active: bool | None
    last_seen: datetime | None
    timezone: str | None
    user_id: str | None
    tags: dict[str, str] | None


class Sender:
    def __init__(
        self,
        database: Database,
        providers: ProviderLookup,
        clock: Clock,
        *,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.database = database
        self.providers = providers
        self.clock = clock
        self.metrics = metrics or DeliveryMetrics()
        self._specs: dict[str, NotificationSpec] = {}

    async def run(self, job: queue.Job, owner: str) -> None:
        payload = job.payload
        notification_id = str(payload["notification_id"])
        platform = Platform(payload["platform"])
        device_ids = [str(d) for d in payload["devices"]]
        async with self.database.read() as conn:
            record = await get_notification(conn, job.app_id, notification_id)
            app = await get_app(conn, job.app_id)
            rows = (
                await _load_batch(
                    conn, notification_id, device_ids, _needs(self._spec(record), platform)
                )
                if record
                else []
            )
            users = sorted({row.user_id for row in rows if row.user_id})
            prefs = await preferences_for(conn, job.app_id, users)
            state = await self.providers.get(job.app_id, platform, conn) if rows else Missing()
        writer = OutcomeWriter(self.database, self.clock, job, owner, platform, self.metrics)
        if record is None or app is None or not rows:
            await writer.commit(record)
            return
        rules = NotificationRules(app, self._spec(record))
        to_send = self._screen(record, rows, writer, rules, prefs)
        to_send = await self._within_caps(app, record, rules, to_send, prefs, writer)
        if to_send:
            await self._send(record, platform, to_send, writer, state)
        await writer.commit(record)

    def _screen(
        self,
        record: NotificationRecord,
        rows: Sequence[BatchRow],
        writer: OutcomeWriter,
        rules: NotificationRules,
        prefs: Mapping[str, UserPreferences],
    ) -> list[BatchRow]:
        """Apply every rule again with today's consent, preferences and clock."""
        now = self.clock.now()
        to_send = []
        for row in rows:
            if record.status is NotificationStatus.CANCELLED:
                writer.final(row.device_id, DeliveryStatus.CANCELLED, None)
                continue
            if row.token is None:
                writer.final(row.device_id, DeliveryStatus.SUPPRESSED, "device_deleted")
                continue
            recipient = RecipientFacts(
                device_id=row.device_id,
                consent=row.consent or "",
                active=bool(row.active),
                timezone=row.timezone,
                user_id=row.user_id,
                preferences=prefs.get(row.user_id) if row.user_id else None,
            )
            decision = rules.decide(recipient, now)
            if decision.status is PlanStatus.DUE:
                to_send.append(row)
            elif decision.status is PlanStatus.SCHEDULED and decision.due_at is not None:
                writer.wait([row.device_id], job_due(decision.due_at, now))
            elif decision.status is PlanStatus.EXPIRED:
                writer.final(row.device_id, DeliveryStatus.EXPIRED, decision.reason)
            else:
                writer.final(row.device_id, DeliveryStatus.SUPPRESSED, decision.reason)
        return to_send

    async def _within_caps(
        self,
        app: App,
        record: NotificationRecord,
        rules: NotificationRules,
        rows: list[BatchRow],
        prefs: Mapping[str, UserPreferences],
        writer: OutcomeWriter,
    ) -> list[BatchRow]:
        """Reserve a cap slot for each recipient that caps apply to; the rest are suppressed."""

        def prefs_of(row: BatchRow) -> UserPreferences | None:
            return prefs.get(row.user_id) if row.user_id else None

        capped = [row for row in rows if rules.caps_apply(prefs_of(row))]
        if not capped:
            return rows
        now = self.clock.now()
        capped_ids = {row.device_id for row in capped}
        allowed = [row for row in rows if row.device_id not in capped_ids]
        subjects = {row.device_id: cap_subject(app, row.user_id, row.device_id) for row in capped}

        def rule(recipient_prefs: UserPreferences | None) -> caps.Allows:
            def allows(recent: caps.RecentSends) -> bool:
                sent = [SentPush(at, category) for category, at in recent]
                return rules.over_cap(recipient_prefs, sent, now) is None

            return allows

        async with self.database.write() as conn:
            granted = await caps.reserve_many(
                conn,
                app_id=app.id,
                wanted=[(subjects[row.device_id], rule(prefs_of(row))) for row in capped],
                notification_id=record.id,
                category=rules.spec.category,
                now=now,
            )
        for row in capped:
            subject = subjects[row.device_id]
            if subject in granted:
                allowed.append(row)
                writer.reserved[row.device_id] = subject
            else:
                writer.final(row.device_id, DeliveryStatus.SUPPRESSED, "frequency_cap")
        return allowed

    async def _send(
        self,
        record: NotificationRecord,
        platform: Platform,
        rows: list[BatchRow],
        writer: OutcomeWriter,
        state: ProviderState,
    ) -> None:
        if isinstance(state, Missing):
            for row in rows:
                writer.final(row.device_id, DeliveryStatus.FAILED, "provider_not_configured")
            return
        if isinstance(state, Paused):
            writer.wait([row.device_id for row in rows], self.clock.now() + PAUSED_RECHECK)
            return
        pushes = self._pushes(record, self._spec(record), platform, rows)
        started = self.clock.monotonic()
        outcomes = await send_all(state.provider, pushes, limit=state.limit)
        # The batch is handed over at once: each push's latency runs to the batch's end.
        elapsed = self.clock.monotonic() - started
        observe, provider = self.metrics.observe_latency, platform.value
        for row, outcome in zip(rows, outcomes, strict=True):
            observe(provider, elapsed)
            writer.outcome(Pending(row.device_id, row.attempts, row.last_seen), outcome)
        if writer.auth_failure is not None:
            await self.providers.auth_failed(record.app_id, platform, writer.auth_failure)

    def _pushes(
        self,
        record: NotificationRecord,
        spec: NotificationSpec,
        platform: Platform,
        rows: list[BatchRow],
    ) -> list[Push]:
        """One message per device; content localized once per locale, personalized if templated."""
        expires_at = record.expires_at
        ttl = max(0, int((expires_at - self.clock.now()).total_seconds()))
        overrides = spec.overrides.get(platform.value, {})
        priority, collapse_key, category = spec.priority, spec.collapse_key, spec.category
        localized: dict[str | None, tuple[Content, bool]] = {}
        pushes: list[Push] = []
        for row in rows:
            locale = row.locale
            entry = localized.get(locale)
            if entry is None:
                content = spec.content.for_locale(locale)
                entry = localized[locale] = (content, _templated(content))
            content, templated = entry
            if templated:
                values = device_values(platform.value, row.user_id, locale, row.tags)
                content = personalize(content, values)
            device_id, token = row.device_id, str(row.token)
            subscription = None
            if row.push_keys:
                keys = row.push_keys
                subscription = WebPushSubscription(token, keys["p256dh"], keys["auth"])
            message = Message(
                content,
                push_id(record.id, device_id),
                expires_at,
                ttl,
                priority,
                collapse_key,
                category,
                overrides,
                record.id,
                device_id,
            )
            pushes.append((message, Recipient(device_id, platform, token, locale, subscription)))
        return pushes

    def _spec(self, record: NotificationRecord) -> NotificationSpec:
        """The notification's spec, kept for its next batches without its audience.

        The sender never reads the audience (the planner resolved it), and a
        `devices` or `users` audience may hold up to 10,000 ids: kept, a full
        cache would hold hundreds of MB.
        """
        spec = self._specs.get(record.id)
        if spec is None:
            if len(self._specs) > 1000:
                self._specs.clear()
            spec = replace(load_spec(record), audience=RESOLVED)
            self._specs[record.id] = spec
        return spec


_BATCH_COLUMNS = (
    deliveries.c.device_id,
    deliveries.c.attempts,
    devices.c.token,
    devices.c.push_keys,
    devices.c.locale,
    devices.c.consent,
    devices.c.active,
    devices.c.last_seen,
    devices.c.timezone,
    devices.c.user_id,
    devices.c.tags,
)
_BATCH_POSTGRES = """
    SELECT d.device_id, d.attempts, v.token, {push_keys}, v.locale, v.consent, v.active,
           v.last_seen, v.timezone, v.user_id, {tags}
    FROM json_array_elements(CAST(:wanted AS json)) AS e
    JOIN deliveries AS d ON d.notification_id = e->>0 AND d.device_id = e->>1
    LEFT JOIN devices AS v ON v.id = d.device_id
    WHERE d.status NOT IN ('sent', 'failed', 'suppressed', 'expired', 'cancelled')
"""
"""As `clarion.store.deliveries._FINALS_POSTGRES`: a primary-key probe per device on any
statistics (not a read of every pending delivery of the notification per batch)."""
_BATCH_POSTGRES_VARIANTS = {
    (push_keys, tags): sa.text(
        _BATCH_POSTGRES.format(
            push_keys="v.push_keys" if push_keys else "NULL AS push_keys",
            tags="v.tags" if tags else "NULL AS tags",
        )
    ).columns(*_BATCH_COLUMNS)
    for push_keys in (False, True)
    for tags in (False, True)
}


def _needs(spec: NotificationSpec, platform: Platform) -> tuple[bool, bool]:
    """Whether the batch reads `push_keys` (Web Push only) and `tags` (templated content only).

    Both are JSON columns decoded row by row; most batches use neither.
    """
    content = spec.content
    texts = [content.title, content.subtitle, content.body]
    for localized in content.localized.values():
        texts += (localized.title, localized.subtitle, localized.body)
    templated = any("{{" in text for text in texts if text)
    return platform is Platform.WEBPUSH, templated


async def _load_batch(
    conn: Any,
    notification_id: str,
    device_ids: list[str],
    needs: tuple[bool, bool] = (True, True),
) -> list[BatchRow]:
    """The batch's pending deliveries with their devices; unneeded JSON columns read as NULL."""
    push_keys, tags = needs
    if conn.dialect.name == "postgresql":
        wanted = json.dumps([(notification_id, device_id) for device_id in device_ids])
        statement = _BATCH_POSTGRES_VARIANTS[push_keys, tags]
        return [BatchRow(*row) for row in await conn.execute(statement, {"wanted": wanted})]
    columns: list[sa.ColumnElement[Any]] = list(_BATCH_COLUMNS)
    if not push_keys:
        columns[3] = sa.null().label("push_keys")
    if not tags:
        columns[10] = sa.null().label("tags")
    query = (
        sa.select(*columns)
        .select_from(deliveries.outerjoin(devices, devices.c.id == deliveries.c.device_id))
        .where(
            deliveries.c.notification_id == notification_id,
            deliveries.c.device_id.in_(device_ids),
            deliveries.c.status.in_(PENDING),
        )
    )
    return [BatchRow(*row) for row in await conn.execute(query)]


__all__ = ["SEND_JOB", "Sender", "Suppression", "push_id"]
