"""Delivering webhook events: signed POSTs, retried from the job queue.

The body is `{"events": [...]}`. `Clarion-Signature: t=<unix time>,v1=<hex>`
carries HMAC-SHA256 of `"<t>." + body` under the webhook's secret, so a
receiver can check both origin and freshness (reject old timestamps to stop
replays). A receiver that does not answer 2xx gets the same events again
with backoff, up to `MAX_ATTEMPTS`; then they are dropped and logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta

from clarion.clock import Clock
from clarion.model.retry import backoff_bound
from clarion.providers.base import HttpRequest, Transport, TransportError
from clarion.store import queue
from clarion.store import webhooks as store
from clarion.store.db import Database
from clarion.store.sealing import Sealer

log = logging.getLogger("clarion.webhooks")

MAX_ATTEMPTS = 12
TIMEOUT = 10.0
SIGNATURE_HEADER = "clarion-signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Clarion-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookSender:
    def __init__(
        self, database: Database, sealer: Sealer, transport: Transport, clock: Clock
    ) -> None:
        self.database = database
        self.sealer = sealer
        self.transport = transport
        self.clock = clock

    async def run(self, job: queue.Job, owner: str) -> None:
        webhook_id = str(job.payload["webhook_id"])
        async with self.database.read() as conn:
            found = await store.webhook_secret(conn, job.app_id, webhook_id, self.sealer)
        if found is None:  # the webhook was deleted meanwhile
            await self._finish(job, owner)
            return
        hook, secret = found
        body = json.dumps({"events": job.payload["events"]}, separators=(",", ":")).encode()
        now = int(self.clock.now().timestamp())
        request = HttpRequest(
            "POST",
            hook.url,
            (
                ("content-type", "application/json"),
                ("user-agent", "Clarion-Webhooks/1"),
                (SIGNATURE_HEADER, signature(secret, now, body)),
            ),
            body,
            TIMEOUT,
        )
        try:
            response = await self.transport.request(request)
            problem = None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except TransportError as exc:
            problem = str(exc)
        if problem is None:
            await self._finish(job, owner)
            return
        if job.attempts >= MAX_ATTEMPTS:
            log.warning(
                "webhook %s gave up after %s attempts: %s", webhook_id, job.attempts, problem
            )
            await self._finish(job, owner)
            return
        delay = timedelta(seconds=backoff_bound(job.attempts, base=5.0, cap=3600.0))
        async with self.database.write() as conn:
            await queue.postpone(conn, job.id, owner, self.clock.now() + delay, error=problem)

    async def _finish(self, job: queue.Job, owner: str) -> None:
        async with self.database.write() as conn:
            await queue.finish(conn, job.id, owner)
