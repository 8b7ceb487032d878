"""Recording what happened to a batch: one transaction per send job.

The writer collects final statuses, retries, waits (paused provider) and
device changes while the batch is sent, then `commit` writes them all,
queues the follow-up job and finishes the send job together. A batch that
only ended deliveries (the usual one) commits in one synchronous hop. Every delivery
update is conditional on the delivery still being pending (`queued` or `scheduled`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.clock import Clock
from clarion.delivery.metrics import DeliveryMetrics
from clarion.model.outcome import (
    AuthFailed,
    InvalidToken,
    Outcome,
    Rejected,
    Retry,
    Sent,
    TokenReplaced,
)
from clarion.model.platform import Platform
from clarion.model.retry import retry_at
from clarion.store import caps, queue, webhooks
from clarion.store.db import Database
from clarion.store.deliveries import Final, record_finals, record_finals_sync
from clarion.store.devices import token_hash
from clarion.store.notifications import (
    DeliveryStatus,
    NotificationRecord,
    complete_if_done,
    complete_if_done_sync,
)
from clarion.store.schema import devices
from clarion.store.schema_pipeline import deliveries

SEND_JOB = "send"
AUTH_RECHECK = timedelta(seconds=30)
PENDING = (DeliveryStatus.QUEUED.value, DeliveryStatus.SCHEDULED.value)
REASON_LENGTH = 200
_SENT = DeliveryStatus.SENT.value
_FAILED = DeliveryStatus.FAILED.value


class _CompletesNotification(Exception):
    """This batch ends the notification: redo its commit on the path that emits the webhook."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A delivery that was pushed: what the outcome needs to know about it."""

    device_id: str
    attempts: int
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class _Retried:
    device_id: str
    attempts: int
    reason: str
    after: float | None


def _pending() -> sa.ColumnElement[bool]:
    """Still pending (written without IN, which executemany cannot expand)."""
    return sa.or_(*(deliveries.c.status == status for status in PENDING))


class OutcomeWriter:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        job: queue.Job,
        owner: str,
        platform: Platform,
        metrics: DeliveryMetrics,
    ) -> None:
        self.database = database
        self.clock = clock
        self.job = job
        self.owner = owner
        self.platform = platform
        self.metrics = metrics
        self.finals: list[Final] = []
        self.retried: list[_Retried] = []
        self.waiting: dict[datetime, list[str]] = {}
        self.deactivate: list[tuple[str, str, datetime | None]] = []
        self.replace: list[tuple[str, str]] = []
        self.auth_failure: str | None = None
        self.reserved: dict[str, str] = {}
        """device id -> cap subject whose slot this batch reserved (released if not sent)."""
        self._again: list[_Retried] = []
        self._again_due: datetime | None = None
        self._counts: Counter[str] = Counter()
        """Outcomes by metric label, added to the metrics once the batch is recorded."""

    def final(
        self,
        device_id: str,
        status: DeliveryStatus,
        reason: str | None,
        *,
        provider_id: str | None = None,
        attempted: bool = False,
    ) -> None:
        self.finals.append(
            Final(
                device_id,
                status.value,
                reason[:REASON_LENGTH] if reason else None,
                provider_id,
                1 if attempted else 0,
            )
        )
        self._counts[reason or status.value] += 1

    def wait(self, device_ids: list[str], until: datetime) -> None:
        """Keep these deliveries pending, due again at `until` (paused provider, quiet hours)."""
        self.waiting.setdefault(until, []).extend(device_ids)

    def outcome(self, pending: Pending, outcome: Outcome) -> None:
        if type(outcome) is Sent:  # nearly every push: skip the pattern match
            self.finals.append(Final(pending.device_id, _SENT, None, outcome.provider_id, 1))
            self._counts[_SENT] += 1
            return
        match outcome:
            case Sent(provider_id=provider_id):
                self.final(
                    pending.device_id,
                    DeliveryStatus.SENT,
                    None,
                    provider_id=provider_id,
                    attempted=True,
                )
            case TokenReplaced(new_token=new_token):
                self.final(pending.device_id, DeliveryStatus.SENT, None, attempted=True)
                self.replace.append((pending.device_id, new_token))
            case InvalidToken(reason=reason, since=since):
                self.final(
                    pending.device_id, DeliveryStatus.FAILED, "invalid_token", attempted=True
                )
                self.deactivate.append((pending.device_id, f"invalid_token: {reason}", since))
            case Rejected(reason=reason):
                self.final(pending.device_id, DeliveryStatus.FAILED, reason, attempted=True)
            case AuthFailed(reason=reason):
                self.auth_failure = reason
                self.wait([pending.device_id], self.clock.now() + AUTH_RECHECK)
                self._counts["auth_failed"] += 1
            case Retry(reason=reason, after=after):
                self.retried.append(_Retried(pending.device_id, pending.attempts, reason, after))
                self._counts["retry"] += 1

    async def commit(self, record: NotificationRecord | None) -> None:
        now = self.clock.now()
        if record is not None and self._only_endings():
            try:
                await self.database.write_sync(partial(self._commit_endings, record.id, now))
            except _CompletesNotification:
                pass  # rolled back: the general path below also emits `notification.completed`
            else:
                self._count()
                return
        follow_ups: list[queue.NewJob] = []
        async with self.database.write() as conn:
            if record is not None:
                self._plan_retries(record, now, follow_ups)
                for until, waiting in self.waiting.items():
                    follow_ups.append(self._job(waiting, until))
                    await _set_due(conn, record.id, waiting, until)
                await self._write_finals(conn, record.id, now)
                deactivated = await self._write_devices(conn, record.app_id, now)
                await caps.release(conn, record.app_id, self._unused_slots(), record.id)
                await webhooks.emit(conn, record.app_id, self._events(record, deactivated), now)
            await queue.enqueue(conn, follow_ups, now)
            await queue.finish(conn, self.job.id, self.owner)
            if record is not None and await complete_if_done(conn, record.id, now):
                await webhooks.emit_completed(conn, record.app_id, record.id, now)
        self._count()

    def _only_endings(self) -> bool:
        """Nothing to write but final statuses (none failed): the commit of nearly every batch."""
        if self.retried or self.waiting or self.deactivate or self.replace:
            return False
        return not any(f.status == _FAILED for f in self.finals) and not self._unused_slots()

    def _commit_endings(self, notification_id: str, now: datetime, conn: sa.Connection) -> None:
        """`commit` of a batch that only ended deliveries, run whole in one hop (`write_sync`).

        On SQLite that is one trip to the writer thread while the database's
        write lock is held, instead of one per statement, each waiting for a
        busy event loop. The batch that completes the notification is rolled
        back and redone by the general path, which also queues its webhook.
        """
        record_finals_sync(conn, notification_id, self.finals, now)
        queue.finish_sync(conn, self.job.id, self.owner)
        if complete_if_done_sync(conn, notification_id, now):
            raise _CompletesNotification

    def _count(self) -> None:
        for label, count in self._counts.items():
            self.metrics.count(self.platform.value, label, count)
        self._counts.clear()

    def _unused_slots(self) -> list[str]:
        """Cap subjects none of whose deliveries in this batch went out or may still go."""
        ended = {row.device_id for row in self.finals if row.status != _SENT}
        used = {s for device, s in self.reserved.items() if device not in ended}
        return sorted({s for device, s in self.reserved.items() if device in ended} - used)

    def _events(
        self, record: NotificationRecord, deactivated: list[tuple[str, str]]
    ) -> list[webhooks.Event]:
        failed = DeliveryStatus.FAILED.value
        events = [
            webhooks.Event(
                webhooks.EventType.DELIVERY_FAILED,
                {
                    "notification_id": record.id,
                    "device_id": row.device_id,
                    "platform": self.platform.value,
                    "reason": row.reason,
                },
            )
            for row in self.finals
            if row.status == failed
        ]
        events += [
            webhooks.Event(
                webhooks.EventType.DEVICE_DEACTIVATED,
                {"device_id": device_id, "platform": self.platform.value, "reason": reason},
            )
            for device_id, reason in deactivated
        ]
        return events

    def _job(self, device_ids: list[str], due: datetime) -> queue.NewJob:
        payload = {**self.job.payload, "devices": device_ids}
        return queue.NewJob(SEND_JOB, self.job.app_id, payload, due)

    def _plan_retries(
        self, record: NotificationRecord, now: datetime, follow_ups: list[queue.NewJob]
    ) -> None:
        if not self.retried:
            return
        attempt = max(r.attempts for r in self.retried) + 1
        floor = max((r.after or 0.0) for r in self.retried)
        due = retry_at(attempt=attempt, now=now, expires_at=record.expires_at, retry_after=floor)
        again = []
        for retried in self.retried:
            if due is not None:
                again.append(retried)
                continue
            if attempt < 10:
                self.final(
                    retried.device_id,
                    DeliveryStatus.EXPIRED,
                    f"ttl: {retried.reason}",
                    attempted=True,
                )
            else:
                self.final(
                    retried.device_id,
                    DeliveryStatus.FAILED,
                    f"retries_exhausted: {retried.reason}",
                    attempted=True,
                )
        if again and due is not None:
            self._again, self._again_due = again, due
            follow_ups.append(self._job([r.device_id for r in again], due))

    async def _write_finals(
        self, conn: AsyncConnection, notification_id: str, now: datetime
    ) -> None:
        await record_finals(conn, notification_id, self.finals, now)
        if self._again and self._again_due is not None:
            again, due = self._again, self._again_due
            await conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.notification_id == notification_id,
                    deliveries.c.device_id == sa.bindparam("b_device"),
                    _pending(),
                )
                .values(
                    status=DeliveryStatus.QUEUED.value,
                    attempts=deliveries.c.attempts + 1,
                    reason=sa.bindparam("b_reason"),
                    due_at=due,
                    updated_at=now,
                ),
                [{"b_device": r.device_id, "b_reason": r.reason[:REASON_LENGTH]} for r in again],
            )

    async def _write_devices(
        self, conn: AsyncConnection, app_id: str, now: datetime
    ) -> list[tuple[str, str]]:
        """Deactivate dead tokens and move replaced ones; returns who was deactivated."""
        deactivated = []
        for device_id, reason, since in self.deactivate:
            query = devices.update().where(devices.c.app_id == app_id, devices.c.id == device_id)
            if since is not None:
                # Re-registered after the service declared the token dead: keep it.
                query = query.where(devices.c.last_seen <= since)
            result = await conn.execute(
                query.where(devices.c.active.is_(True)).values(
                    active=False,
                    deactivated_reason=reason[:REASON_LENGTH],
                    deactivated_at=now,
                    updated_at=now,
                )
            )
            if result.rowcount:
                deactivated.append((device_id, reason))
        for device_id, new_token in self.replace:
            await _replace_token(conn, app_id, device_id, new_token, now)
        return deactivated


async def _set_due(
    conn: AsyncConnection, notification_id: str, device_ids: list[str], due: datetime
) -> None:
    """Waiting deliveries stay queued with a later due time (not an attempt)."""
    await conn.execute(
        deliveries.update()
        .where(
            deliveries.c.notification_id == notification_id,
            deliveries.c.device_id.in_(device_ids),
            _pending(),
        )
        .values(due_at=due)
    )


async def _replace_token(
    conn: AsyncConnection, app_id: str, device_id: str, new_token: str, now: datetime
) -> None:
    """Move the device to the token the service gave us (ADM canonical id)."""
    current = (
        await conn.execute(
            sa.select(devices.c.platform).where(
                devices.c.app_id == app_id, devices.c.id == device_id
            )
        )
    ).first()
    if current is None:
        return
    digest = token_hash(new_token)
    taken = (
        await conn.execute(
            sa.select(devices.c.id).where(
                devices.c.app_id == app_id,
                devices.c.platform == current.platform,
                devices.c.token_hash == digest,
            )
        )
    ).first()
    query = devices.update().where(devices.c.app_id == app_id, devices.c.id == device_id)
    if taken is not None:
        # The new token is already registered as another device: this one is a duplicate.
        await conn.execute(
            query.values(
                active=False,
                deactivated_reason="token_replaced",
                deactivated_at=now,
                updated_at=now,
            )
        )
        return
    await conn.execute(query.values(token=new_token, token_hash=digest, updated_at=now))
