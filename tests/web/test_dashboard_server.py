"""The dashboard over httpx against the real ASGI app, on both store backends.

Sessions, CSRF, tenancy, and each page's job checked at the HTTP level; the
browser tests (test_dashboard.py) drive the same pages in Chromium.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.api.app import create_app
from clarion.api.services import Services
from clarion.clock import FakeClock
from clarion.store.db import Database
from clarion.web.dashboard import PUBLIC_PATHS
from clarion.web.dashboard import routes as dashboard_routes
from clarion.web.dashboard.session import COOKIE
from tests.api.conftest import ADMIN, ADMIN_KEY, AppKeys, create_test_app, make_settings, no_dns

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def web(
    database: Database, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    services = Services(make_settings(database, tmp_path), database, clock, resolver=no_dns)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://clarion.test") as client:
        yield client


@pytest.fixture
async def shop(web: httpx.AsyncClient) -> AppKeys:
    return await create_test_app(web, "Shop")


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def sign_in(web: httpx.AsyncClient, key: str, next_path: str = "/") -> httpx.Response:
    form = await web.get("/sign-in")
    return await web.post(
        "/sign-in", data={"csrf": csrf_of(form.text), "key": key, "next": next_path}
    )


async def token(web: httpx.AsyncClient, path: str) -> str:
    page = await web.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


async def register(web: httpx.AsyncClient, app: AppKeys, **body: Any) -> dict[str, Any]:
    answer = await web.post(f"/v1/apps/{app.id}/devices", json=body, headers=app.client())
    assert answer.status_code in (200, 201), answer.text
    result: dict[str, Any] = answer.json()
    return result


def dashboard_endpoints() -> list[tuple[str, str]]:
    """Every (method, path) of the dashboard router, path parameters filled in."""
    found = []
    for route in dashboard_routes():
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        found += [
            (method, path) for method in sorted(route.methods) if route.path not in PUBLIC_PATHS
        ]
    return found


async def assert_signed_out(web: httpx.AsyncClient) -> None:
    endpoints = dashboard_endpoints()
    assert len(endpoints) > 20
    for method, path in endpoints:
        answer = await web.request(method, path)
        if method == "GET" and not path.endswith(".json"):
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/sign-in?next="), path
        else:
            assert answer.status_code == 401, (method, path, answer.status_code)


async def test_no_dashboard_route_answers_without_a_session(web: httpx.AsyncClient) -> None:
    await assert_signed_out(web)


async def test_revoking_the_key_signs_its_sessions_out(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    assert (await sign_in(web, shop.server_key)).status_code == 303
    assert (await web.get(f"/apps/{shop.id}")).status_code == 200
    keys = (await web.get(f"/v1/apps/{shop.id}/keys", headers=shop.server())).json()["items"]
    server_id = next(k["id"] for k in keys if k["role"] == "server")
    revoked = await web.delete(f"/v1/apps/{shop.id}/keys/{server_id}", headers=ADMIN)
    assert revoked.status_code == 204
    await assert_signed_out(web)


async def test_session_cookie_is_httponly_lax_sealed_and_holds_no_key(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    answer = await sign_in(web, shop.server_key, f"/apps/{shop.id}/devices")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/apps/{shop.id}/devices"
    header = answer.headers["set-cookie"]
    assert header.startswith(f"{COOKIE}=")
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    value = web.cookies[COOKIE]
    assert shop.server_key not in value and shop.server_key[8:20] not in value
    assert "clr_" not in value


async def test_tampered_or_expired_sessions_lead_to_the_sign_in_form(
    web: httpx.AsyncClient, shop: AppKeys, clock: FakeClock
) -> None:
    await sign_in(web, shop.server_key)
    good = web.cookies[COOKIE]
    web.cookies.set(COOKIE, good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"))
    assert (await web.get(f"/apps/{shop.id}")).status_code == 303
    web.cookies.set(COOKIE, good)
    assert (await web.get(f"/apps/{shop.id}")).status_code == 200
    clock.advance(12 * 3600 + 1)
    assert (await web.get(f"/apps/{shop.id}")).status_code == 303


async def test_sign_in_takes_server_or_admin_keys_only(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    for wrong in (shop.client_key, "clr_srv_nothing", ""):
        answer = await sign_in(web, wrong)
        assert answer.status_code == 401
        assert "not a live server key" in answer.text
    form = await web.get("/sign-in")
    stale = await web.post("/sign-in", data={"csrf": "forged", "key": shop.server_key})
    assert stale.status_code == 403 and COOKIE in form.cookies
    assert (await web.get(f"/apps/{shop.id}")).status_code == 303


async def test_sign_in_never_redirects_off_site(web: httpx.AsyncClient, shop: AppKeys) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = await sign_in(web, shop.server_key, target)
        assert answer.headers["location"] == "/"


async def test_posts_without_the_csrf_token_change_nothing(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    await sign_in(web, shop.server_key)
    before = (await web.get(f"/v1/apps/{shop.id}/keys", headers=shop.server())).json()["items"]
    for data in ({"role": "server"}, {"role": "server", "csrf": "guess"}):
        assert (await web.post(f"/apps/{shop.id}/keys", data=data)).status_code == 403
    count = await web.post(f"/apps/{shop.id}/audience-count.json", json={"audience": {"all": True}})
    assert count.status_code == 403
    after = (await web.get(f"/v1/apps/{shop.id}/keys", headers=shop.server())).json()["items"]
    assert after == before
    assert (await web.post("/sign-out", data={})).status_code == 403


async def test_a_server_key_sees_only_its_app_and_the_admin_sees_all(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    other = await create_test_app(web, "Other")
    await sign_in(web, shop.server_key)
    home = await web.get("/")
    assert home.status_code == 303 and home.headers["location"] == f"/apps/{shop.id}"
    assert (await web.get(f"/apps/{other.id}")).status_code == 404
    assert (await web.get(f"/apps/{other.id}/devices")).status_code == 404
    await sign_in(web, ADMIN_KEY)
    listing = await web.get("/")
    assert listing.status_code == 200 and "Shop" in listing.text and "Other" in listing.text
    assert (await web.get(f"/apps/{other.id}")).status_code == 200


async def test_sign_out_ends_the_session(web: httpx.AsyncClient, shop: AppKeys) -> None:
    await sign_in(web, shop.server_key)
    csrf = await token(web, f"/apps/{shop.id}")
    answer = await web.post("/sign-out", data={"csrf": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in"
    assert (await web.get(f"/apps/{shop.id}")).status_code == 303


async def test_overview_counts_devices_by_platform_and_consent(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    granted = {"status": "granted", "source": "os_prompt"}
    await register(web, shop, platform="fcm", token="f1", consent=granted)
    await register(web, shop, platform="fcm", token="f2")
    await register(web, shop, platform="apns", token="ab" * 32, consent=granted)
    await sign_in(web, shop.server_key)
    page = (await web.get(f"/apps/{shop.id}")).text
    fcm_row = re.search(r"<th scope=\"row\">fcm</th>(.*?)</tr>", page, re.S)
    assert fcm_row is not None
    cells = re.findall(r'<td class="num">(\d+)</td>', fcm_row.group(1))
    assert cells == ["1", "0", "1", "0"]  # granted, provisional, denied, revoked
    assert "not configured" in page
    assert "Content-Security-Policy" in (await web.get(f"/apps/{shop.id}")).headers


async def test_device_search_by_user_token_prefix_and_filter(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    a = await register(
        web, shop, platform="fcm", token="tok-alpha", user_id="ann", tags={"plan": "pro"}
    )
    b = await register(web, shop, platform="fcm", token="tok-beta", user_id="bob")
    await sign_in(web, shop.server_key)
    base = f"/apps/{shop.id}/devices"
    by_user = (await web.get(base, params={"by": "user", "q": "bob"})).text
    assert b["id"] in by_user and a["id"] not in by_user
    by_token = (await web.get(base, params={"by": "token", "q": "tok-al"})).text
    assert a["id"] in by_token and b["id"] not in by_token
    wildcard = (await web.get(base, params={"by": "token", "q": "%"})).text
    assert a["id"] not in wildcard
    by_filter = (await web.get(base, params={"by": "filter", "q": "tag.plan = 'pro'"})).text
    assert a["id"] in by_filter and b["id"] not in by_filter
    bad = await web.get(base, params={"by": "filter", "q": "tag.plan = "})
    assert "at position" in bad.text


async def test_device_page_shows_consent_history_topics_and_tags(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    device = await register(
        web,
        shop,
        platform="fcm",
        token="t1",
        tags={"plan": "pro"},
        consent={"status": "granted", "source": "os_prompt"},
    )
    path = f"/v1/apps/{shop.id}/devices/{device['id']}"
    await web.put(f"{path}/topics/news", headers=shop.client())
    await web.put(
        f"{path}/consent", json={"status": "revoked", "source": "settings"}, headers=shop.client()
    )
    await sign_in(web, shop.server_key)
    page = (await web.get(f"/apps/{shop.id}/devices/{device['id']}")).text
    assert "os_prompt" in page and "settings" in page and "revoked" in page
    assert "news" in page and "plan" in page and "pro" in page


async def test_live_count_matches_the_api_count(web: httpx.AsyncClient, shop: AppKeys) -> None:
    for index in range(3):
        await register(web, shop, platform="fcm", token=f"t{index}", tags={"n": str(index)})
    await sign_in(web, shop.server_key)
    csrf = await token(web, f"/apps/{shop.id}/compose")
    for audience in ({"filter": "tag.n in ('0', '2')"}, {"all": True}, {"users": ["nobody"]}):
        mine = await web.post(
            f"/apps/{shop.id}/audience-count.json",
            json={"audience": audience},
            headers={"x-csrf-token": csrf},
        )
        api = await web.post(
            f"/v1/apps/{shop.id}/audience/count", json={"audience": audience}, headers=shop.server()
        )
        assert mine.json() == api.json()
    bad = await web.post(
        f"/apps/{shop.id}/audience-count.json",
        json={"audience": {"filter": "tag.n ="}},
        headers={"x-csrf-token": csrf},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "audience.filter"


async def test_compose_confirms_the_audience_size_then_sends_once(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    for index in range(2):
        await register(web, shop, platform="fcm", token=f"t{index}", tags={"plan": "pro"})
    await sign_in(web, shop.server_key)
    csrf = await token(web, f"/apps/{shop.id}/compose")
    form = {
        "csrf": csrf,
        "audience_kind": "filter",
        "filter": "tag.plan = 'pro'",
        "title": "Sale",
        "body": "Today only",
        "when": "now",
        "quiet_hours": "defer",
    }
    confirm = await web.post(f"/apps/{shop.id}/compose", data=form)
    assert confirm.status_code == 200
    assert 'id="confirm-count">2<' in confirm.text and "Send to 2 devices" in confirm.text
    fields = dict(re.findall(r'name="(request|idempotency_key)" value="([^"]*)"', confirm.text))
    import html

    send = {
        "csrf": csrf,
        "request": html.unescape(fields["request"]),
        "idempotency_key": fields["idempotency_key"],
    }
    first = await web.post(f"/apps/{shop.id}/compose/send", data=send)
    again = await web.post(f"/apps/{shop.id}/compose/send", data=send)
    assert first.status_code == 303 and again.headers["location"] == first.headers["location"]
    ntf_id = first.headers["location"].rsplit("/", 1)[1]
    status = await web.get(f"/v1/apps/{shop.id}/notifications/{ntf_id}", headers=shop.server())
    assert status.json()["request"]["audience"] == {"filter": "tag.plan = 'pro'"}
    assert status.json()["request"]["content"]["title"] == "Sale"
    page = await web.get(first.headers["location"])
    assert page.status_code == 200 and ntf_id in page.text
    progress = (await web.get(first.headers["location"] + "/progress.json")).json()
    assert progress["funnel"][0]["label"] == "targeted"
    listing = await web.get(f"/apps/{shop.id}/notifications")
    assert ntf_id in listing.text


async def test_compose_shows_the_apis_validation_errors(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    await sign_in(web, shop.server_key)
    csrf = await token(web, f"/apps/{shop.id}/compose")
    form = {
        "csrf": csrf,
        "audience_kind": "filter",
        "filter": "platform = ",
        "title": "Hi {{ tag.name }}",
        "category": "nope",
        "when": "at",
        "send_at": "",
    }
    answer = await web.post(f"/apps/{shop.id}/compose", data=form)
    assert answer.status_code == 422 and "schedule.send_at" in answer.text
    answer = await web.post(f"/apps/{shop.id}/compose", data={**form, "when": "now"})
    assert answer.status_code == 422
    for field in ("audience.filter", "content.title", "category"):
        assert field in answer.text
    assert "Hi {{ tag.name }}" in answer.text  # the form keeps what was typed


async def test_settings_save_defaults_and_categories_through_the_api_rules(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    await sign_in(web, shop.server_key)
    csrf = await token(web, f"/apps/{shop.id}/settings")
    form = {
        "csrf": csrf,
        "name": "Shop",
        "default_timezone": "Europe/Paris",
        "quiet_start": "22:00",
        "quiet_end": "07:30",
        "caps": "3 per day\n1 per hour for promo",
        "cat-0-name": "promo",
        "cat-0-description": "Deals",
        "cat-0-default_opt_in": "on",
        "cat-0-counts_toward_caps": "on",
    }
    saved = await web.post(f"/apps/{shop.id}/settings", data=form)
    assert saved.status_code == 303
    app = (await web.get(f"/v1/apps/{shop.id}", headers=shop.server())).json()
    assert app["default_timezone"] == "Europe/Paris"
    assert app["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    assert (
        app["caps"]
        == [
            {"max": 3, "per": "day", "category": None},
            {"max": 1, "per": "hour", "category": "promo"},
        ]
        or app["caps"][1]["category"] == "promo"
    )
    assert (
        app["categories"][0]["name"] == "promo" and app["categories"][0]["time_sensitive"] is False
    )
    page = (await web.get(f"/apps/{shop.id}/settings?saved=true")).text
    assert "1 per hour for promo" in page and "Saved." in page
    bad = await web.post(
        f"/apps/{shop.id}/settings", data={**form, "default_timezone": "Mars/Base", "caps": "lots"}
    )
    assert bad.status_code == 422 and "default_timezone" in bad.text and "caps" in bad.text


async def test_segments_are_created_edited_and_deleted(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    await register(web, shop, platform="fcm", token="t1", tags={"plan": "pro"})
    await sign_in(web, shop.server_key)
    csrf = await token(web, f"/apps/{shop.id}/segments")
    base = f"/apps/{shop.id}/segments"
    created = await web.post(base, data={"csrf": csrf, "name": "pros", "filter": "tag.plan='pro'"})
    assert created.status_code == 303
    listing = (await web.get(base)).text
    assert "tag.plan = &#39;pro&#39;" in listing
    segment_id = re.search(r'segments/(seg_[^"]+)"', listing)
    assert segment_id is not None
    edit = f"{base}/{segment_id.group(1)}"
    bad = await web.post(edit, data={"csrf": csrf, "name": "pros", "filter": "tag.plan ="})
    assert bad.status_code == 422 and "at position" in bad.text
    assert (
        await web.post(edit, data={"csrf": csrf, "name": "p2", "filter": "platform='fcm'"})
    ).status_code == 303
    assert "p2" in (await web.get(base)).text
    assert (await web.post(f"{edit}/delete", data={"csrf": csrf})).status_code == 303
    assert (await web.get(edit)).status_code == 404


async def test_a_new_key_is_shown_once_and_can_be_revoked(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    await sign_in(web, shop.server_key)
    csrf = await token(web, f"/apps/{shop.id}/keys")
    created = await web.post(f"/apps/{shop.id}/keys", data={"csrf": csrf, "role": "client"})
    key = re.search(r'id="new-key" class="wrap">([^<]+)<', created.text)
    assert key is not None and key.group(1).startswith("clr_cli_")
    assert key.group(1) not in (await web.get(f"/apps/{shop.id}/keys")).text
    keys = (await web.get(f"/v1/apps/{shop.id}/keys", headers=shop.server())).json()["items"]
    new_id = keys[-1]["id"]
    answer = await web.post(f"/apps/{shop.id}/keys/{new_id}/revoke", data={"csrf": csrf})
    assert answer.status_code == 303
    refused = await web.post(
        f"/v1/apps/{shop.id}/devices",
        json={"platform": "fcm", "token": "x"},
        headers={"authorization": f"Bearer {key.group(1)}"},
    )
    assert refused.status_code == 401


async def test_webhooks_are_checked_like_the_api_and_show_their_secret_once(
    web: httpx.AsyncClient, shop: AppKeys
) -> None:
    await sign_in(web, shop.server_key)
    csrf = await token(web, f"/apps/{shop.id}/webhooks")
    base = f"/apps/{shop.id}/webhooks"
    private = await web.post(base, data={"csrf": csrf, "url": "https://10.0.0.1/x", "events": "*"})
    assert private.status_code == 422
    created = await web.post(
        base, data={"csrf": csrf, "url": "https://hooks.example/x", "events": ["delivery.failed"]}
    )
    assert created.status_code == 201 and "whsec_" in created.text
    assert "whsec_" not in (await web.get(base)).text
    hooks = (await web.get(f"/v1/apps/{shop.id}/webhooks", headers=shop.server())).json()["items"]
    assert hooks[0]["events"] == ["delivery.failed"]
