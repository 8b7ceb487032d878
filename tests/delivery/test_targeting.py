"""Targeting end to end: what each emulator device receives for filter, segment and topic
audiences, with titles personalized and localized per device."""

from __future__ import annotations

import json
from typing import Any

from tests.delivery.conftest import Pipeline

GRANTED = {"status": "granted", "source": "os_prompt"}


def _titles(pipeline: Pipeline, subscription: Any) -> list[str]:
    return [json.loads(payload)["title"] for payload in pipeline.webpush.received(subscription)]


async def _sent(pipeline: Pipeline, body: dict[str, Any]) -> dict[str, Any]:
    accepted = await pipeline.send(body)
    assert accepted.status_code == 202, accepted.text
    await pipeline.worker.run_until_idle()
    return await pipeline.status(accepted.json()["id"])


async def test_filter_audience_reaches_only_matching_devices_with_personal_titles(
    pipeline: Pipeline,
) -> None:
    _, anna = await pipeline.register_webpush(
        consent=GRANTED, app_version="2.10.0", tags={"plan": "pro", "first_name": "Anna"}
    )
    _, nameless = await pipeline.register_webpush(
        consent=GRANTED, app_version="2.10.1", tags={"plan": "pro"}
    )
    _, old = await pipeline.register_webpush(
        consent=GRANTED, app_version="2.9.9", tags={"plan": "pro", "first_name": "Olga"}
    )
    status = await _sent(
        pipeline,
        {
            "audience": {"filter": "tag.plan = 'pro' and app_version >= '2.10'"},
            "content": {"title": 'Hi {{ tag.first_name | default: "there" }}', "body": "New"},
        },
    )
    assert status["stats"]["targeted"] == 2
    assert _titles(pipeline, anna) == ["Hi Anna"]
    assert _titles(pipeline, nameless) == ["Hi there"]
    assert _titles(pipeline, old) == []


async def test_segment_audience_uses_the_filter_it_had_when_accepted(pipeline: Pipeline) -> None:
    _, fr = await pipeline.register_webpush(consent=GRANTED, locale="fr-CA")
    _, de = await pipeline.register_webpush(consent=GRANTED, locale="de-DE")
    created = await pipeline.api.post(
        f"/v1/apps/{pipeline.app.id}/segments",
        json={"name": "french", "filter": "locale in ('fr', 'fr-CA', 'fr-FR')"},
        headers=pipeline.app.server(),
    )
    segment_id = created.json()["id"]
    accepted = await pipeline.send(
        {
            "audience": {"segment": segment_id},
            "content": {
                "title": "Hello",
                "localized": {"fr": {"title": "Bonjour {{ locale | default: '' }}"}},
            },
        }
    )
    assert accepted.status_code == 202, accepted.text
    await pipeline.api.patch(
        f"/v1/apps/{pipeline.app.id}/segments/{segment_id}",
        json={"filter": "platform exists"},
        headers=pipeline.app.server(),
    )
    await pipeline.worker.run_until_idle()
    assert _titles(pipeline, fr) == ["Bonjour fr-CA"]
    assert _titles(pipeline, de) == []
    stored = await pipeline.status(accepted.json()["id"])
    assert stored["request"]["audience"]["segment"]["id"] == segment_id


async def test_topic_audience_with_localized_fallback_to_default(pipeline: Pipeline) -> None:
    news_fr, fr = await pipeline.register_webpush(consent=GRANTED, locale="fr-CA")
    news_en, en = await pipeline.register_webpush(consent=GRANTED, locale="en-GB")
    _, quiet = await pipeline.register_webpush(consent=GRANTED, locale="fr-FR")
    for device_id in (news_fr, news_en):
        subscribed = await pipeline.api.put(
            f"/v1/apps/{pipeline.app.id}/devices/{device_id}/topics/breaking-news",
            headers=pipeline.app.client(),
        )
        assert subscribed.status_code == 200
    status = await _sent(
        pipeline,
        {
            "audience": {"topic": "breaking-news"},
            "content": {"title": "Breaking", "localized": {"fr": {"title": "Flash info"}}},
        },
    )
    assert status["stats"]["sent"] == 2
    assert _titles(pipeline, fr) == ["Flash info"]
    assert _titles(pipeline, en) == ["Breaking"]
    assert _titles(pipeline, quiet) == []


async def test_templates_that_may_leave_a_hole_are_refused_at_request_time(
    pipeline: Pipeline,
) -> None:
    answer = await pipeline.send(
        {
            "audience": {"all": True},
            "content": {"title": "Hi {{ tag.first_name }}", "body": "{{ nope }}"},
        }
    )
    assert answer.status_code == 422
    fields = [error["field"] for error in answer.json()["errors"]]
    assert fields == ["content.title", "content.body"]
    bad_filter = await pipeline.send(
        {"audience": {"filter": "tag.plan = 'pro' and ("}, "content": {"title": "x"}}
    )
    assert bad_filter.status_code == 422
    [error] = bad_filter.json()["errors"]
    assert error["field"] == "audience.filter"
    assert "at position 22" in error["message"]
    by_user = await pipeline.send(
        {"audience": {"users": ["u-1"]}, "content": {"title": "{{ user_id }}"}}
    )
    assert by_user.status_code == 202, by_user.text
