"""The recipient's preference center in Chromium, against a running `clarion demo`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from clarion.clock import SystemClock
from clarion.config import decode_secret_key
from clarion.web.links import LinkSigner
from tests.web.conftest import DemoServer
from tests.web.helpers import (
    fresh_user,
    preference_link,
    preferences,
    register_fcm,
    send_and_wait,
    use_categories,
)


def _consent_sources(demo: DemoServer, device_id: str) -> list[tuple[str, str]]:
    with demo.api() as api:
        items = api.get(f"/v1/apps/{demo.app_id}/devices/{device_id}/consent").json()["items"]
    return [(item["new_status"], item["source"]) for item in items]


def test_category_turned_off_in_the_page_suppresses_the_next_send(
    clarion_demo: DemoServer, page: Any, screenshots: Any, axe: Any
) -> None:
    use_categories(clarion_demo)
    user = fresh_user("pc")
    register_fcm(clarion_demo, user)
    page.goto(preference_link(clarion_demo, user))
    assert page.get_by_role("switch", name="Marketing").is_checked()
    assert axe(page) == []
    screenshots(page, "preference-center")

    page.get_by_role("switch", name="Marketing").uncheck()
    page.get_by_role("button", name="Save my choices").click()

    assert page.get_by_role("status").inner_text() == "Your choices are saved."
    assert not page.get_by_role("switch", name="Marketing").is_checked()
    assert page.get_by_role("switch", name="Orders").is_checked()
    assert preferences(clarion_demo, user)["categories"] == {"marketing": False, "orders": True}
    screenshots(page, "preference-center-saved")
    content = {"title": "Big sale", "body": "Everything must go"}
    audience = {"users": [user]}
    status = send_and_wait(
        clarion_demo, {"audience": audience, "category": "marketing", "content": content}
    )
    assert status["status"] == "completed"
    assert status["stats"]["suppressed"] == {"category_opt_out": 1}
    assert status["stats"]["sent"] == 0
    orders = send_and_wait(
        clarion_demo, {"audience": audience, "category": "orders", "content": content}
    )
    assert orders["stats"]["sent"] == 1


def test_link_for_one_user_cannot_change_another(clarion_demo: DemoServer, page: Any) -> None:
    use_categories(clarion_demo)
    alice, bob = fresh_user("alice"), fresh_user("bob")
    bob_url = preference_link(clarion_demo, bob)
    page.goto(preference_link(clarion_demo, alice))
    # Alice's form, with her nonce, aimed at Bob's link: refused, Bob untouched.
    page.eval_on_selector("#preferences", "(form, url) => form.action = url", bob_url)
    page.get_by_role("switch", name="Marketing").uncheck()
    with page.expect_navigation():
        page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_role("alert").inner_text().startswith("This form is out of date")
    assert preferences_or_none(clarion_demo, bob) is None
    assert preferences_or_none(clarion_demo, alice) is None
    page.go_back()
    page.reload()
    page.get_by_role("switch", name="Marketing").uncheck()
    page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_role("status").is_visible()
    assert preferences(clarion_demo, alice)["categories"] == {"marketing": False, "orders": True}
    assert preferences_or_none(clarion_demo, bob) is None


def preferences_or_none(demo: DemoServer, user_id: str) -> dict[str, Any] | None:
    with demo.api() as api:
        answer = api.get(f"/v1/apps/{demo.app_id}/users/{user_id}")
    return answer.json()["preferences"] if answer.status_code == 200 else None


def test_tampered_and_expired_links_show_an_error_page_not_the_preferences(
    clarion_demo: DemoServer, page: Any, screenshots: Any
) -> None:
    user = fresh_user("tamper")
    url = preference_link(clarion_demo, user)
    base, _, token = url.rpartition("/")
    payload, _, mac = token.partition(".")
    other = LinkSigner(b"\x01" * 32).sign(clarion_demo.app_id, user, SystemClock().now())
    for forged in (f"{payload}.{mac[:-2]}AA", other, "not-a-token", f"{payload[:-4]}.{mac}"):
        answer = page.goto(f"{base}/{forged}")
        assert answer.status == 404
        assert page.get_by_role("alert").inner_text().startswith("This link is not valid")
    secret = decode_secret_key((clarion_demo.directory / "var" / "secret.key").read_text())
    old = SystemClock().now() - timedelta(days=8)
    expired = LinkSigner(secret).sign(clarion_demo.app_id, user, old, ttl=7 * 24 * 3600)
    answer = page.goto(f"{base}/{expired}")
    assert answer.status == 403
    assert page.get_by_role("alert").inner_text().startswith("This link has expired")
    screenshots(page, "preference-center-expired")
    posted = page.request.post(f"{base}/{expired}", form={"nonce": "x", "action": "off"})
    assert posted.status == 403


def test_page_works_without_javascript_and_turning_all_off_revokes_consent(
    clarion_demo: DemoServer, browser: Any
) -> None:
    use_categories(clarion_demo)
    user = fresh_user("nojs")
    devices = [register_fcm(clarion_demo, user), register_fcm(clarion_demo, user)]
    context = browser.new_context(java_script_enabled=False, timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        page.goto(preference_link(clarion_demo, user))
        assert page.get_by_label("Time zone").input_value() == ""  # nothing filled without JS
        page.get_by_role("switch", name="Orders").uncheck()
        page.get_by_label("My own quiet hours").check()
        page.get_by_label("From").fill("21:30")
        page.get_by_label("To").fill("07:15")
        page.get_by_label("Time zone").select_option("Europe/Paris")
        page.get_by_role("button", name="Save my choices").click()
        assert page.get_by_role("status").inner_text() == "Your choices are saved."
        assert preferences(clarion_demo, user) == {
            "categories": {"marketing": True, "orders": False},
            "quiet_hours": {"start": "21:30", "end": "07:15"},
            "timezone": "Europe/Paris",
            "caps": None,
        }
        page.get_by_role("button", name="Turn off all notifications").click()
        for device in devices:
            assert _consent_sources(clarion_demo, device)[-1] == ("revoked", "preference_center")
        page.get_by_role("button", name="Turn notifications back on").click()
        for device in devices:
            assert _consent_sources(clarion_demo, device)[-1] == ("granted", "preference_center")
        page.get_by_role("button", name="Pause everything").click()
        paused = preferences(clarion_demo, user)
        assert paused["categories"] == {"marketing": False, "orders": False}
        assert paused["timezone"] == "Europe/Paris"
    finally:
        context.close()


def test_page_speaks_french_and_fills_the_browser_time_zone(
    clarion_demo: DemoServer, browser: Any, screenshots: Any, axe: Any
) -> None:
    use_categories(clarion_demo)
    user = fresh_user("fr")
    context = browser.new_context(locale="fr-FR", timezone_id="Pacific/Auckland")
    try:
        page = context.new_page()
        page.goto(preference_link(clarion_demo, user))
        assert page.locator("html").get_attribute("lang") == "fr"
        assert page.get_by_role("heading", level=1).inner_text() == "Vos notifications de Demo"
        assert page.get_by_label("Fuseau horaire").input_value() == "Pacific/Auckland"
        page.get_by_label("Mes propres heures calmes").check()
        page.get_by_label("De", exact=True).fill("23:00")
        page.get_by_label("À", exact=True).fill("23:00")
        page.get_by_role("button", name="Enregistrer mes choix").click()
        assert page.get_by_role("alert").inner_text() == "Vérifiez les champs signalés."
        assert "Le début et la fin doivent différer." in page.content()
        assert axe(page) == []
        screenshots(page, "preference-center-fr-error")
    finally:
        context.close()


def test_link_api_bounds_ttl_and_needs_the_server_key(clarion_demo: DemoServer) -> None:
    path = f"/v1/apps/{clarion_demo.app_id}/users/u-1/preference-link"
    with clarion_demo.api() as api:
        assert api.post(path, json={"ttl": 10}).status_code == 422
        answer = api.post(path, json={"ttl": 3600})
        assert answer.status_code == 200
        assert answer.json()["url"].startswith(f"{clarion_demo.base_url}/p/")
    with clarion_demo.api(clarion_demo.client_key) as api:
        assert api.post(path).status_code == 403
