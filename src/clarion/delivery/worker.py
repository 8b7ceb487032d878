"""The worker loop: claim due jobs under a lease, run them, keep leases alive.

One asyncio loop runs several jobs at once (plan, send). Leases are renewed
by a heartbeat while jobs run; on shutdown the worker stops claiming, lets
running jobs finish for a bounded time, and hands back the leases of the
rest at once so another worker need not wait for them to expire. In the
embedded process the API wakes the worker when it enqueues, so a push does
not wait for the next poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from clarion.clock import Clock
from clarion.delivery.lookup import ProviderLookup
from clarion.delivery.metrics import DeliveryMetrics
from clarion.delivery.planner import PlanConflict, plan_chunk
from clarion.delivery.sender import SEND_JOB, Sender
from clarion.model.retry import backoff_bound
from clarion.store import queue
from clarion.store.db import Database
from clarion.store.notifications import PLAN_JOB

log = logging.getLogger("clarion.worker")

LEASE = timedelta(seconds=60)
POLL_INTERVAL = 0.25
SHUTDOWN_GRACE = 10.0

Handler = Callable[[queue.Job], Awaitable[None]]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        database: Database,
        providers: ProviderLookup,
        clock: Clock,
        *,
        owner: str | None = None,
        concurrency: int = 8,
        lease: timedelta = LEASE,
        poll_interval: float = POLL_INTERVAL,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.owner = owner or worker_name()
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.metrics = metrics or DeliveryMetrics()
        self.sender = Sender(database, providers, clock, metrics=self.metrics)
        self.handlers: dict[str, Handler] = {PLAN_JOB: self._plan, SEND_JOB: self._send}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Work was enqueued: look now instead of at the next poll."""
        self._wake.set()

    def add_handler(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then shut down gracefully."""
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while not stop.is_set():
                # Cleared before claiming: a wake() that lands while claiming is not lost.
                self._wake.clear()
                room = self._room()
                claimed = await self._claim_and_start()
                # Fewer jobs than room means none are left due: wait for a wake-up (an
                # enqueue, a finished job) or the poll instead of claiming again at once.
                if claimed < room or room == 0:
                    await self._idle(stop)
        finally:
            heartbeat.cancel()
            await self._shutdown()

    async def run_until_idle(self, max_rounds: int = 10_000) -> None:
        """Run jobs until none are due (tests and the CLI's one-shot uses)."""
        for _ in range(max_rounds):
            claimed = await self._claim_and_start()
            if self._running:
                await asyncio.wait(self._running.values(), return_when=asyncio.FIRST_COMPLETED)
            elif claimed == 0:
                return

    async def _idle(self, stop: asyncio.Event) -> None:
        if len(self._running) >= self.concurrency:
            await asyncio.wait(self._running.values(), return_when=asyncio.FIRST_COMPLETED)
            return
        # Below capacity a finishing job frees nothing we were waiting for: new work
        # arrives with a wake-up (an enqueue in this process) or is found by the poll.
        signals: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
        ]
        await asyncio.wait(signals, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        for signal in signals:
            signal.cancel()

    def _room(self) -> int:
        return 0 if self._stopping else max(0, self.concurrency - len(self._running))

    async def _claim_and_start(self) -> int:
        room = self._room()
        if room <= 0:
            return 0
        try:
            jobs = await queue.claim(
                self.database,
                self.owner,
                self.clock.now(),
                lease=self.lease,
                limit=room,
                kinds=list(self.handlers),
            )
        except Exception:
            log.exception("claiming jobs failed")
            return 0
        self._start(jobs)
        return len(jobs)

    def _start(self, jobs: list[queue.Job]) -> None:
        for job in jobs:
            task = asyncio.create_task(self._execute(job))
            self._running[job.id] = task
            task.add_done_callback(self._forget(job.id))

    def _forget(self, job_id: int) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self._running.pop(job_id, None)

        return done

    async def _execute(self, job: queue.Job) -> None:
        try:
            await self.handlers[job.kind](job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s (%s) failed on attempt %s", job.id, job.kind, job.attempts)
            delay = timedelta(seconds=backoff_bound(job.attempts, base=1.0, cap=300.0))
            async with self.database.write() as conn:
                await queue.postpone(
                    conn,
                    job.id,
                    self.owner,
                    self.clock.now() + delay,
                    error=f"{type(exc).__name__}: {exc}",
                )

    async def _plan(self, job: queue.Job) -> None:
        notification_id = str(job.payload["notification_id"])
        while True:
            # The last chunk finishes the plan job and claims what it queued in its
            # own commit: for a one-time code, the shortest way to the push.
            handover = queue.Handover(
                job.id, self.owner, self.lease, self._room(), list(self.handlers)
            )
            try:
                result = await plan_chunk(
                    self.database,
                    job.app_id,
                    notification_id,
                    self.clock.now(),
                    handover=handover,
                )
            except PlanConflict:
                log.warning("another planner owns %s; leaving it", notification_id)
                return
            self.metrics.planned.inc(result.planned)
            if result.done:
                break
            if result.queued:
                self.wake()  # send the first chunks while the rest is planned
        claimed = result.claimed
        if claimed is None:  # nothing left to plan (cancelled, or finished elsewhere)
            async with self.database.write() as conn:
                claimed = await queue.hand_over(conn, handover, self.clock.now())
        self._start(claimed)

    async def _send(self, job: queue.Job) -> None:
        await self.sender.run(job, self.owner)

    async def _heartbeat(self) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            if self._running:
                try:
                    await queue.extend(
                        self.database,
                        list(self._running),
                        self.owner,
                        self.clock.now() + self.lease,
                    )
                except Exception:
                    log.exception("lease heartbeat failed")

    async def _shutdown(self) -> None:
        self._stopping = True
        if self._running:
            _, pending = await asyncio.wait(self._running.values(), timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
            unfinished = list(self._running)
            await asyncio.gather(*pending, return_exceptions=True)
            await queue.release(self.database, unfinished, self.owner)
