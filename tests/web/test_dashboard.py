"""The dashboard in Chromium, against a running `clarion demo` and its emulators.

A publisher signs in, composes a send to a filter (the live count agrees with
the API's), confirms it, watches the funnel reach `completed`, and opens a
device's "why not sent". Every page is screenshotted at desktop and phone
widths; axe-core finds no serious or critical problem on the compose page.
"""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import DemoServer

GRANTED = {"status": "granted", "source": "os_prompt"}


def register(demo: DemoServer, run: str, index: int, *, consent: bool) -> str:
    body: dict[str, Any] = {
        "platform": "fcm",
        "token": f"dash-{run}-{index}",
        "user_id": f"dash-{run}-{index}",
        "tags": {"run": run, "plan": "pro" if index % 2 == 0 else "free"},
    }
    if consent:
        body["consent"] = GRANTED
    with demo.api(demo.client_key) as api:
        answer = api.post(f"/v1/apps/{demo.app_id}/devices", json=body)
        assert answer.status_code == 201, answer.text
        device_id: str = answer.json()["id"]
        return device_id


def api_count(demo: DemoServer, audience: dict[str, Any]) -> int:
    with demo.api() as api:
        answer = api.post(f"/v1/apps/{demo.app_id}/audience/count", json={"audience": audience})
        assert answer.status_code == 200, answer.text
        count: int = answer.json()["count"]
        return count


def sign_in(page: Any, demo: DemoServer, key: str) -> None:
    page.goto(demo.base_url + "/")
    expect(page).to_have_url(f"{demo.base_url}/sign-in?next=%2F")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_compose_to_a_filter_watch_the_funnel_complete_and_ask_why_not_sent(
    clarion_demo: DemoServer, page: Any, screenshots: Any, axe: Any
) -> None:
    demo = clarion_demo
    run = uuid.uuid4().hex[:8]
    granted = [register(demo, run, index, consent=True) for index in range(4)]
    silent = register(demo, run, 4, consent=False)
    sign_in(page, demo, demo.server_key)
    expect(page).to_have_url(f"{demo.base_url}/apps/{demo.app_id}")
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()
    screenshots(page, "dashboard-overview")

    page.get_by_role("link", name="Compose").click()
    filter_text = f"tag.run = '{run}' and tag.plan = 'pro'"
    page.get_by_label("Filter expression").fill(filter_text)
    expected = api_count(demo, {"filter": filter_text})
    assert expected == 3  # devices 0, 2 and 4 (4 without consent)
    expect(page.locator("#live-count")).to_have_text(f"{expected} devices", timeout=10_000)
    whole_run = f"tag.run = '{run}'"
    page.get_by_label("Filter expression").fill(whole_run)
    everyone = api_count(demo, {"filter": whole_run})
    assert everyone == 5
    expect(page.locator("#live-count")).to_have_text(f"{everyone} devices")
    page.get_by_label("Filter expression").fill("tag.run = ")
    expect(page.locator("#count-error")).to_contain_text("at position")
    page.get_by_label("Filter expression").fill(filter_text)
    expect(page.locator("#live-count")).to_have_text("3 devices")

    page.get_by_label("Title", exact=True).fill("Pro week")
    page.get_by_label("Body").fill("Everything for pros, this week only")
    expect(page.locator(".preview.ios [data-preview=title]")).to_have_text("Pro week")
    expect(page.locator(".preview.android [data-preview=body]")).to_have_text(
        "Everything for pros, this week only"
    )
    assert axe(page) == []
    screenshots(page, "dashboard-compose")

    page.get_by_role("button", name="Review before sending").click()
    expect(page.locator("#confirm-count")).to_have_text("3")
    screenshots(page, "dashboard-confirm")
    page.get_by_role("button", name="Send to 3 devices").click()

    # The page polls its progress and reloads itself once the campaign is over.
    expect(page.locator("#live")).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(page.locator("#ntf-status")).to_have_text("completed")
    expect(page.get_by_role("link", name=silent)).to_be_visible(timeout=15_000)
    funnel = page.locator("#funnel desc")
    for step in ("targeted: 3.", "suppressed: no_consent: 1.", "sent: 2."):
        expect(funnel).to_contain_text(step)
    expect(page.locator("#timeline rect")).not_to_have_count(0)
    screenshots(page, "dashboard-notification")

    page.get_by_role("link", name=silent).click()
    expect(page.locator("#explain")).to_have_text(
        "Not sent: the device has no opt-in consent (granted or provisional)."
    )
    screenshots(page, "dashboard-why-not-sent")
    page.get_by_role("link", name="the device").click()
    expect(page.get_by_role("heading", name="Consent history")).to_be_visible()
    screenshots(page, "dashboard-device")
    assert granted


def test_every_page_renders_for_the_admin_at_desktop_and_phone_widths(
    clarion_demo: DemoServer, page: Any, screenshots: Any
) -> None:
    demo = clarion_demo
    sign_in(page, demo, demo.admin_key)
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()
    screenshots(page, "dashboard-apps")
    base = f"{demo.base_url}/apps/{demo.app_id}"
    for path, name, heading in [
        ("/devices", "devices", "Devices"),
        ("/notifications", "notifications", "Notifications"),
        ("/segments", "segments", "Segments"),
        ("/settings", "settings", "Settings"),
        ("/webhooks", "webhooks", "Webhooks"),
        ("/keys", "keys", "API keys"),
    ]:
        page.goto(base + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        screenshots(page, f"dashboard-{name}")
    page.goto(base + "/segments")
    page.get_by_label("Name").fill(f"pros-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Filter").fill("tag.plan = 'pro'")
    pros = api_count(demo, {"filter": "tag.plan = 'pro'"})
    expect(page.locator("#live-count")).to_have_text(f"{pros} devices")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Segments")).to_be_visible()
    page.goto(base + "/keys")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_contain_text("clr_srv_")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{demo.base_url}/sign-in")
    page.goto(base)
    expect(page.get_by_role("heading", name="Sign in to Clarion")).to_be_visible()
    screenshots(page, "dashboard-sign-in")
