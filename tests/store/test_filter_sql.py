"""Compiled filters select exactly what the documented semantics say, on both backends."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from clarion.model.audience import Audience, AudienceKind
from clarion.model.filter import Node, parse_filter
from clarion.model.version import version_key
from clarion.store.audience import audience_count, audience_page
from clarion.store.db import Database
from clarion.store.filter_sql import filter_condition
from clarion.store.schema import apps, device_topics, devices
from tests.model.filter_strategies import (
    LOCALES,
    NOW,
    PLATFORMS,
    TAG_NAMES,
    TAG_VALUES,
    TIMEZONES,
    TOPICS,
    USERS,
    VERSIONS,
    FakeDevice,
    evaluate,
    filters,
)

APP = "app_1"
OTHER_APP = "app_2"


def _fleet(count: int = 80) -> list[FakeDevice]:
    rng = random.Random(7)

    def maybe(pool: list[str]) -> str | None:
        return rng.choice([*pool, None])

    fleet = []
    for index in range(count):
        tags = {name: rng.choice(TAG_VALUES) for name in TAG_NAMES if rng.random() < 0.6}
        fleet.append(
            FakeDevice(
                id=f"dev_{index:04d}",
                platform=rng.choice(PLATFORMS),
                locale=maybe(LOCALES),
                timezone=maybe(TIMEZONES),
                app_version=maybe(VERSIONS),
                user_id=maybe(USERS),
                last_seen=NOW - timedelta(days=rng.randint(0, 90), hours=rng.randint(0, 23)),
                created_at=NOW - timedelta(days=rng.randint(30, 120)),
                tags=tags,
                topics=frozenset(t for t in TOPICS if rng.random() < 0.4),
            )
        )
    return fleet


FLEET = _fleet()


async def _store(database: Database, fleet: list[FakeDevice]) -> None:
    async with database.write() as conn:
        for app_id in (APP, OTHER_APP):
            await conn.execute(
                apps.insert().values(
                    id=app_id,
                    name=app_id,
                    caps=[],
                    categories=[],
                    subject_salt=b"s" * 32,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        rows, topic_rows = [], []
        for app_id in (APP, OTHER_APP):
            for device in fleet:
                device_id = device.id if app_id == APP else device.id + "_other"
                rows.append(
                    {
                        "id": device_id,
                        "app_id": app_id,
                        "platform": device.platform,
                        "token": device_id,
                        "token_hash": device_id,
                        "user_id": device.user_id,
                        "locale": device.locale,
                        "timezone": device.timezone,
                        "app_version": device.app_version,
                        "app_version_key": version_key(device.app_version),
                        "tags": dict(device.tags),
                        "consent": "granted",
                        "active": True,
                        "created_at": device.created_at,
                        "updated_at": device.created_at,
                        "last_seen": device.last_seen,
                    }
                )
                topic_rows += [
                    {"app_id": app_id, "device_id": device_id, "topic": t, "created_at": NOW}
                    for t in device.topics
                ]
        await conn.execute(devices.insert(), rows)
        await conn.execute(device_topics.insert(), topic_rows)


@pytest.fixture
async def fleet_db(database: Database) -> Database:
    await _store(database, FLEET)
    return database


async def _selected(database: Database, node: Node) -> set[str]:
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(devices.c.id).where(filter_condition(APP, node, now=NOW))
        )
        return {row.id for row in rows}


def _expected(node: Node) -> set[str]:
    return {device.id for device in FLEET if evaluate(node, device)}


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(node=filters)
async def test_sql_selects_what_the_pure_evaluation_selects(fleet_db: Database, node: Node) -> None:
    assert await _selected(fleet_db, node) == _expected(node)


@pytest.mark.parametrize(
    "text",
    [
        "platform = 'apns' and tag.plan in ('pro', 'team') and app_version >= '2.3.0' "
        "and last_seen > now - 30d and not (locale = 'de-DE' or timezone = 'Europe/Berlin')",
        "app_version > '2.9.1'",
        "app_version = '2.3'",
        "locale != 'fr'",
        "not tag.plan = 'pro'",
        "tag.plan not in ('pro', 'team')",
        "topic = 'news' and not topic = 'sport'",
        "topic exists or tag.a.b:c-d exists",
        "tag.first_name = 'o\\'brien' or tag.plan = 'Zoé'",
    ],
)
async def test_written_filters_match_the_evaluation(fleet_db: Database, text: str) -> None:
    node = parse_filter(text)
    assert await _selected(fleet_db, node) == _expected(node)


async def test_app_version_2_10_is_newer_than_2_9(fleet_db: Database) -> None:
    selected = await _selected(fleet_db, parse_filter("app_version > '2.9.1'"))
    versions = {d.app_version for d in FLEET if d.id in selected}
    assert "2.10.0" in versions
    assert versions <= {"2.10.0", "10.0"}


async def test_values_that_look_like_sql_are_only_values(fleet_db: Database) -> None:
    node = parse_filter("tag.plan = 'x\\' or 1=1 --' or user_id = \"'; drop table devices; --\"")
    assert await _selected(fleet_db, node) == set()
    async with fleet_db.read() as conn:
        assert (await conn.execute(audience_count(APP, Audience(AudienceKind.ALL)))).scalar() == 80


async def test_filter_and_segment_audiences_page_by_device_id(fleet_db: Database) -> None:
    text = "platform = 'apns' or topic = 'news'"
    expected = sorted(_expected(parse_filter(text)))
    for audience in (
        Audience(AudienceKind.FILTER, (text,)),
        Audience(AudienceKind.SEGMENT, ("seg_1", text)),
    ):
        seen: list[str] = []
        after = None
        async with fleet_db.read() as conn:
            while True:
                page = (
                    await conn.execute(audience_page(APP, audience, after=after, limit=7, now=NOW))
                ).all()
                seen += [row.id for row in page]
                if len(page) < 7:
                    break
                after = page[-1].id
            count = (await conn.execute(audience_count(APP, audience, now=NOW))).scalar()
        assert seen == expected
        assert count == len(expected)
