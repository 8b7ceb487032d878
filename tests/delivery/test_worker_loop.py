"""The worker loop's path from an enqueue to the push: wake-ups, not polls."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from clarion.delivery.planner import plan_chunk
from clarion.store import queue
from clarion.store.db import Database
from clarion.store.schema_pipeline import jobs
from tests.delivery.conftest import Pipeline

GRANTED = {"status": "granted", "source": "os_prompt"}


async def _one_code(pipeline: Pipeline) -> None:
    await pipeline.register(
        {"platform": "apns", "token": secrets.token_hex(32), "user_id": "u-1", "consent": GRANTED}
    )
    accepted = await pipeline.send(
        {"audience": {"users": ["u-1"]}, "content": {"title": "Your code: 1234"}}
    )
    assert accepted.status_code == 202, accepted.text


async def _one_code_through_the_loop(pipeline: Pipeline) -> int:
    """Send a one-time code with the worker's loop running; how many pushes arrived.

    The poll is an hour: it never fires during a test, so only the API's
    wake-up and the plan job's own claim of the send job it queued can get
    the push out.
    """
    pipeline.worker.poll_interval = 3600
    stop = asyncio.Event()
    running = asyncio.create_task(pipeline.worker.run(stop))
    try:
        await asyncio.sleep(0)
        await _one_code(pipeline)
        return len(await asyncio.wait_for(pipeline.apns.state.wait_for(1), 10))
    finally:
        stop.set()
        await running


async def test_a_one_time_code_is_pushed_without_waiting_for_a_poll(
    apns_pipeline: Pipeline,
) -> None:
    assert await _one_code_through_the_loop(apns_pipeline) == 1


async def test_the_loop_claims_again_only_when_work_may_be_left(
    apns_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    claim = queue.claim

    async def counting(
        database: Database,
        owner: str,
        now: datetime,
        *,
        lease: timedelta,
        limit: int,
        kinds: Sequence[str] | None = None,
    ) -> list[queue.Job]:
        claimed = await claim(database, owner, now, lease=lease, limit=limit, kinds=kinds)
        calls.append(len(claimed))
        return claimed

    monkeypatch.setattr(queue, "claim", counting)
    assert await _one_code_through_the_loop(apns_pipeline) == 1
    # At most one empty look at start-up, then the plan job; the send job comes with
    # the plan's last commit, so no claim comes back empty after work was found.
    assert sum(calls) == 1
    assert len(calls) <= 2


async def test_the_last_chunk_finishes_the_plan_job_and_claims_its_send_job(
    apns_pipeline: Pipeline,
) -> None:
    await _one_code(apns_pipeline)
    database, now = apns_pipeline.database, apns_pipeline.clock.now()
    [plan] = await queue.claim(database, "w-1", now, lease=timedelta(seconds=60), limit=10)
    handover = queue.Handover(plan.id, "w-1", timedelta(seconds=60), 10, ["plan", "send"])
    result = await plan_chunk(
        database, plan.app_id, str(plan.payload["notification_id"]), now, handover=handover
    )
    assert result.done
    assert result.claimed is not None
    [send] = result.claimed
    assert send.kind == "send"
    assert send.payload["notification_id"] == plan.payload["notification_id"]
    async with database.read() as conn:
        left = (await conn.execute(sa.select(jobs.c.id, jobs.c.lease_owner))).all()
    assert [(row.id, row.lease_owner) for row in left] == [(send.id, "w-1")]


async def test_the_sender_keeps_a_spec_for_later_batches_without_its_audience(
    apns_pipeline: Pipeline,
) -> None:
    # A devices audience may list 10,000 ids; a thousand cached specs must not keep them.
    device_id = await apns_pipeline.register(
        {"platform": "apns", "token": secrets.token_hex(32), "consent": GRANTED}
    )
    ids = [device_id, *(f"dev_{i:026d}" for i in range(999))]
    accepted = await apns_pipeline.send({"audience": {"devices": ids}, "content": {"title": "Hi"}})
    assert accepted.status_code == 202, accepted.text
    await apns_pipeline.worker.run_until_idle()
    assert len(apns_pipeline.apns.state.requests) == 1
    [spec] = apns_pipeline.worker.sender._specs.values()
    assert spec.audience.values == ()
    assert spec.content.title == "Hi"
