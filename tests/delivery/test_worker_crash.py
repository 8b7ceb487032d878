"""Real worker processes on PostgreSQL; one is SIGKILLed mid-campaign.

Shows: every delivery ends final, none lost; the provider sees duplicates
only for pushes that were leased to the killed worker; a device is never
held by two live leases at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from clarion.emulators.apns import ApnsEmulator
from clarion.model.notification import parse_notification
from clarion.store import apps as app_store
from clarion.store import credentials
from clarion.store.db import Database
from clarion.store.notifications import create_notification
from clarion.store.schema import devices
from clarion.store.schema_pipeline import deliveries, jobs
from clarion.store.sealing import Sealer
from tests.conftest import TABLES

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DEVICES = 10_000
SECRET = b"s" * 32
LEASE_SECONDS = 4


async def _seed(database: Database, apns: ApnsEmulator, count: int = DEVICES) -> tuple[str, str]:
    now = datetime.now(UTC)
    async with database.write() as conn:
        app, _, _ = await app_store.create_app(conn, name="Crash", now=now)
        config = {
            "auth": "token",
            "key_id": "KEY0000001",
            "team_id": "TEAM000001",
            "private_key": apns.new_signing_key(),
            "bundle_id": "com.example.app",
            "environment": "production",
            "endpoint": apns.url,
        }
        await credentials.put_credential(
            conn, Sealer(SECRET), app.id, "apns", config, public={}, expires_at=None, now=now
        )
        rows = []
        for index in range(count):
            token = secrets.token_hex(32)
            rows.append(
                {
                    "id": f"dev_{index:026d}",
                    "app_id": app.id,
                    "platform": "apns",
                    "token": token,
                    "token_hash": secrets.token_hex(32),
                    "push_keys": None,
                    "user_id": None,
                    "locale": None,
                    "timezone": None,
                    "app_version": None,
                    "tags": {},
                    "consent": "granted",
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                    "last_seen": now,
                }
            )
        await conn.execute(devices.insert(), rows)
        spec = parse_notification(
            {"audience": {"all": True}, "content": {"title": "Flash sale"}}, now
        )
        notification_id = await create_notification(conn, app.id, spec, now)
    return app.id, notification_id


def _start_worker(url: str, ca_file: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(
        CLARION_DATABASE_URL=url,
        CLARION_SECRET_KEY=SECRET.hex(),
        CLARION_ADMIN_KEY="clr_adm_crash",
        CLARION_ALLOW_PRIVATE_ENDPOINTS="1",
        CLARION_CA_FILE=str(ca_file),
        CLARION_JOB_LEASE=str(LEASE_SECONDS),
        CLARION_WORKERS="4",
        CLARION_DATA_DIR=str(log.parent),
    )
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "clarion.cli", "worker"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def _live_leases(database: Database) -> list[tuple[str, list[str]]]:
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(jobs.c.lease_owner, jobs.c.payload).where(
                jobs.c.kind == "send", jobs.c.lease_expires_at > datetime.now(UTC)
            )
        )
        return [(row.lease_owner, list(row.payload.get("devices", []))) for row in rows]


async def _wait_until_final(database: Database, notification_id: str) -> list[str]:
    """Poll until every delivery is final; returns devices seen under two live leases."""
    double_held: list[str] = []
    for _ in range(1200):
        holders: dict[str, str] = {}
        for owner, ids in await _live_leases(database):
            for device_id in ids:
                if holders.setdefault(device_id, owner) != owner:
                    double_held.append(device_id)
        async with database.read() as conn:
            counts = dict(
                (
                    await conn.execute(
                        sa.select(deliveries.c.status, sa.func.count())
                        .where(deliveries.c.notification_id == notification_id)
                        .group_by(deliveries.c.status)
                    )
                ).all()
            )
        if sum(counts.values()) == DEVICES and not counts.get("queued"):
            return double_held
        await asyncio.sleep(0.2)
    raise AssertionError(f"deliveries never all final: {counts}")


async def test_killed_worker_loses_nothing_and_duplicates_only_its_in_flight_pushes(
    postgres_url: str | None, tmp_path: Path
) -> None:
    if postgres_url is None:
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    database = Database(postgres_url)
    async with database.engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    async with ApnsEmulator() as apns:
        assert apns.ca_file is not None
        _, notification_id = await _seed(database, apns)
        workers = [
            _start_worker(postgres_url, apns.ca_file, tmp_path / f"worker{i}.log") for i in range(3)
        ]
        victim = workers[0]
        try:
            for _ in range(2000):
                if len(apns.state.requests) >= DEVICES // 5:
                    break
                await asyncio.sleep(0.05)
            held = await _live_leases(database)
            owners = {owner for owner, _ in held}
            victim_owner = next(o for o in owners if o and o.split(":")[1] == str(victim.pid))
            in_flight = sum(len(ids) for owner, ids in held if owner == victim_owner)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            double_held = await _wait_until_final(database, notification_id)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=30)
        async with database.read() as conn:
            statuses = dict(
                (
                    await conn.execute(
                        sa.select(deliveries.c.status, sa.func.count())
                        .where(deliveries.c.notification_id == notification_id)
                        .group_by(deliveries.c.status)
                    )
                ).all()
            )
        pushes = Counter(r.headers.get("apns-id") for r in apns.state.requests if r.status == 200)
    await database.dispose()
    assert statuses == {"sent": DEVICES}
    assert len(pushes) == DEVICES
    duplicates = sum(count - 1 for count in pushes.values())
    assert duplicates <= in_flight
    assert double_held == []
    for worker in workers[1:]:
        assert worker.returncode == 0
