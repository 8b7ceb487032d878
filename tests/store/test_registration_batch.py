"""A batch of registrations leaves the store exactly as the same ones one by one."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from clarion.clock import FakeClock
from clarion.model.consent import ConsentChange, ConsentStatus, RequestOrigin
from clarion.model.device import Device, Registration
from clarion.model.message import WebPushSubscription
from clarion.model.platform import Platform
from clarion.store import apps
from clarion.store.db import Database
from clarion.store.registration import RegistrationWrite, upsert_device, upsert_devices
from clarion.store.schema import consent_events, devices

ORIGIN = RequestOrigin("203.0.113.7", "Shop/1.0")
GRANTED = ConsentChange(ConsentStatus.GRANTED, "os_prompt", "v2")
REVOKED = ConsentChange(ConsentStatus.REVOKED, "settings")
PUSH = WebPushSubscription("https://push.example.net/s/1", "p" * 87, "a" * 22)

# Rounds of registrations; within a round each token appears once (one batch).
ROUNDS: list[list[tuple[Registration, ConsentChange | None]]] = [
    [
        (Registration(Platform.APNS, "aa" * 32, user_id="alice", tags={"plan": "pro"}), GRANTED),
        (Registration(Platform.FCM, "fcm-1", user_id="bob", locale="fr-FR"), None),
        (Registration(Platform.WEBPUSH, PUSH.endpoint, subscription=PUSH), GRANTED),
    ],
    [
        (Registration(Platform.APNS, "aa" * 32, user_id="carol"), None),  # moves to carol
        (Registration(Platform.FCM, "fcm-1", user_id="bob", app_version="2.1.0"), GRANTED),
        (Registration(Platform.HMS, "hms-1", timezone="Asia/Tokyo"), REVOKED),
    ],
    [
        (Registration(Platform.APNS, "aa" * 32, user_id="dave", tags={"a": "b"}), REVOKED),
        (Registration(Platform.FCM, "fcm-1"), GRANTED),  # same answer: no event
        (Registration(Platform.WEBPUSH, PUSH.endpoint, subscription=PUSH, user_id="erin"), None),
    ],
]


async def _state(database: Database, app_id: str) -> tuple[list[Any], list[Any]]:
    skip = {"id", "app_id"}
    async with database.read() as conn:
        stored = await conn.execute(
            devices.select().where(devices.c.app_id == app_id).order_by(devices.c.token_hash)
        )
        rows = [{k: v for k, v in row._asdict().items() if k not in skip} for row in stored]
        ledger = await conn.execute(
            sa.select(
                devices.c.token_hash,
                consent_events.c.old_status,
                consent_events.c.new_status,
                consent_events.c.source,
                consent_events.c.text_version,
                consent_events.c.server_time,
                consent_events.c.subject_hash.is_(None),
            )
            .join(devices, devices.c.id == consent_events.c.device_id)
            .where(consent_events.c.app_id == app_id)
            .order_by(consent_events.c.id)
        )
        return rows, [tuple(event) for event in ledger]


async def test_batches_store_what_one_by_one_stores(database: Database, clock: FakeClock) -> None:
    async with database.write() as conn:
        single, _, _ = await apps.create_app(conn, name="One by one", now=clock.now())
        batched, _, _ = await apps.create_app(conn, name="Batched", now=clock.now())
    answers: dict[str, list[Any]] = {"single": [], "batched": []}
    for number, round_ in enumerate(ROUNDS):
        now = clock.now() + timedelta(minutes=number)
        for registration, consent in round_:
            async with database.write() as conn:
                one = await upsert_device(conn, single, registration, consent, ORIGIN, now)
            answers["single"].append(_comparable(one.device, one.created))
        writes = [RegistrationWrite(batched, reg, consent, ORIGIN, now) for reg, consent in round_]
        results = await database.write_sync(lambda conn, w=writes: upsert_devices(conn, w))
        answers["batched"] += [_comparable(r.device, r.created) for r in results]
    assert answers["batched"] == answers["single"]
    assert await _state(database, batched.id) == await _state(database, single.id)


def _comparable(device: Device, created: bool) -> tuple[bool, dict[str, Any]]:
    values = dataclasses.asdict(device)
    del values["id"], values["app_id"]
    return created, values
