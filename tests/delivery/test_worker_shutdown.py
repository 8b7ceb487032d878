"""SIGTERM: a worker stops claiming, finishes what is in flight, and leaves no lease behind."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from clarion.emulators.apns import ApnsEmulator
from clarion.emulators.recording import Fault
from clarion.store.db import Database
from clarion.store.migrate import migrate
from clarion.store.schema_pipeline import deliveries, jobs
from tests.delivery.test_worker_crash import _seed, _start_worker

pytestmark = pytest.mark.slow


async def test_sigterm_drains_in_flight_pushes_and_releases_the_rest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clarion.db'}"
    database = Database(url)
    await migrate(database)
    async with ApnsEmulator() as apns:
        assert apns.ca_file is not None
        apns.state.faults.set_all(Fault(status=200, delay=1.0))
        _, notification_id = await _seed(database, apns, count=600)
        worker = _start_worker(url, apns.ca_file, tmp_path / "worker.log")
        log = tmp_path / "worker.log"
        for _ in range(600):  # started: its SIGTERM handler is installed
            if "started" in log.read_text():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # planned and pushing; the answers come 1 s after each push
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 30)
        stopped_in = time.monotonic() - started
        async with database.read() as conn:
            live = (
                await conn.execute(
                    sa.select(sa.func.count()).where(jobs.c.lease_expires_at > datetime.now(UTC))
                )
            ).scalar_one()
            sent_by_first = (
                await conn.execute(
                    sa.select(sa.func.count()).where(
                        deliveries.c.notification_id == notification_id,
                        deliveries.c.status == "sent",
                    )
                )
            ).scalar_one()
        assert code == 0, (tmp_path / "worker.log").read_text()
        assert stopped_in < 15
        assert live == 0
        assert sent_by_first > 0

        apns.state.faults.clear()
        second = _start_worker(url, apns.ca_file, tmp_path / "second.log")
        try:
            for _ in range(600):
                async with database.read() as conn:
                    pending = (
                        await conn.execute(
                            sa.select(sa.func.count()).where(
                                deliveries.c.notification_id == notification_id,
                                deliveries.c.status != "sent",
                            )
                        )
                    ).scalar_one()
                if pending == 0:
                    break
                await asyncio.sleep(0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 30)
        assert pending == 0
    await database.dispose()
