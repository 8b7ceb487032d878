"""Prometheus metrics of one Clarion process.

Counters and the latency histogram are this process's own (in the embedded
deployment that is everything); queue depth and the age of the oldest due
job are read from the store at scrape time, so any process reports the
whole queue.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from clarion.clock import Clock
from clarion.store import queue
from clarion.store.db import Database

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class DeliveryMetrics:
    """The metrics the pipeline records; one registry per process (or per test)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Label lookups cost more than the increment; the hot path reuses the children.
        self._counters: dict[tuple[str, str], Any] = {}
        self._latencies: dict[str, Any] = {}
        self.deliveries = Counter(
            "clarion_deliveries",
            "Delivery outcomes by provider and outcome (sent, invalid_token, retry, ...)",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "clarion_provider_latency_seconds",
            "Time from handing a push to the provider to its classified answer",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.planned = Counter(
            "clarion_planned_devices",
            "Devices the planner has turned into deliveries",
            registry=self.registry,
        )
        self.queue_due = Gauge(
            "clarion_queue_due_jobs", "Jobs due and not leased", registry=self.registry
        )
        self.queue_leased = Gauge(
            "clarion_queue_leased_jobs", "Jobs leased by a worker", registry=self.registry
        )
        self.queue_oldest = Gauge(
            "clarion_queue_oldest_due_age_seconds",
            "How long the oldest due job has waited",
            registry=self.registry,
        )

    def count(self, provider: str, outcome: str, n: int = 1) -> None:
        key = (provider, outcome)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self.deliveries.labels(provider, outcome)
        child.inc(n)

    def observe_latency(self, provider: str, seconds: float) -> None:
        child = self._latencies.get(provider)
        if child is None:
            child = self._latencies[provider] = self.latency.labels(provider)
        child.observe(seconds)

    async def render(self, database: Database, clock: Clock) -> bytes:
        """The Prometheus text exposition, with queue figures read now."""
        async with database.read() as conn:
            depth = await queue.depth(conn, clock.now())
        self.queue_due.set(depth.due)
        self.queue_leased.set(depth.leased)
        self.queue_oldest.set(depth.oldest_due_age)
        return bytes(generate_latest(self.registry))
