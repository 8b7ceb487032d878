"""Assembles a production worker: providers from sealed credentials, webhooks, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from clarion.clock import Clock
from clarion.config import Settings
from clarion.delivery.credential_lookup import CredentialProviders
from clarion.delivery.webhooks import WebhookSender
from clarion.delivery.worker import Worker
from clarion.providers.base import Transport
from clarion.providers.outbound import OutboundPolicy, address_guard
from clarion.providers.registry import curl_transport_factory
from clarion.store.db import Database
from clarion.store.sealing import Sealer
from clarion.store.webhooks import WEBHOOK_JOB

WEBHOOK_RESPONSE_LIMIT = 16 * 1024


@dataclass
class Runtime:
    worker: Worker
    providers: CredentialProviders
    webhook_transport: Transport

    async def aclose(self) -> None:
        await self.providers.aclose()
        await self.webhook_transport.aclose()


def build_runtime(database: Database, settings: Settings, clock: Clock) -> Runtime:
    providers = CredentialProviders(database, settings, clock)
    worker = Worker(
        database,
        providers,
        clock,
        concurrency=settings.workers or 8,
        lease=timedelta(seconds=settings.job_lease),
    )
    policy = OutboundPolicy(allow_private=settings.allow_private_endpoints)
    transport = curl_transport_factory(settings.ca_file, max_response_bytes=WEBHOOK_RESPONSE_LIMIT)(
        address_guard=address_guard(policy)
    )
    webhooks = WebhookSender(database, Sealer(settings.secret_key), transport, clock)
    worker.add_handler(WEBHOOK_JOB, lambda job: webhooks.run(job, worker.owner))
    return Runtime(worker, providers, transport)
