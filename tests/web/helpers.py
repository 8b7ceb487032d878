"""Small HTTP helpers the browser tests share (the API side of each scenario)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.web.conftest import DemoServer

CATEGORIES = [
    {"name": "marketing", "description": "Offers, sales and product news."},
    {"name": "orders", "description": "Shipping and delivery updates for your orders."},
]


def fresh_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def use_categories(demo: DemoServer) -> None:
    """Give the demo app two categories and no app-wide quiet hours (sends go at once)."""
    with demo.api() as api:
        answer = api.patch(
            f"/v1/apps/{demo.app_id}", json={"categories": CATEGORIES, "quiet_hours": None}
        )
        assert answer.status_code == 200, answer.text


def register_fcm(demo: DemoServer, user_id: str) -> str:
    """An FCM device of `user_id` with consent granted; its id."""
    body = {
        "platform": "fcm",
        "token": f"tok-{uuid.uuid4().hex}",
        "user_id": user_id,
        "consent": {"status": "granted", "source": "os_prompt"},
    }
    with demo.api(demo.client_key) as api:
        answer = api.post(f"/v1/apps/{demo.app_id}/devices", json=body)
        assert answer.status_code == 201, answer.text
        device_id: str = answer.json()["id"]
        return device_id


def preference_link(demo: DemoServer, user_id: str, **body: Any) -> str:
    with demo.api() as api:
        answer = api.post(f"/v1/apps/{demo.app_id}/users/{user_id}/preference-link", json=body)
        assert answer.status_code == 200, answer.text
        url: str = answer.json()["url"]
        return url


def preferences(demo: DemoServer, user_id: str) -> dict[str, Any]:
    with demo.api() as api:
        answer = api.get(f"/v1/apps/{demo.app_id}/users/{user_id}")
        assert answer.status_code == 200, answer.text
        prefs: dict[str, Any] = answer.json()["preferences"]
        return prefs


def send_and_wait(demo: DemoServer, body: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    """POST a notification and poll it until it completes; the final status."""
    with demo.api() as api:
        answer = api.post(f"/v1/apps/{demo.app_id}/notifications", json=body)
        assert answer.status_code == 202, answer.text
        url = f"/v1/apps/{demo.app_id}/notifications/{answer.json()['id']}"
        deadline = time.monotonic() + timeout
        while True:
            status: dict[str, Any] = api.get(url).json()
            if status["status"] == "completed" or time.monotonic() > deadline:
                return status
            time.sleep(0.2)
