"""The Web Push SDK in Chromium: subscribe, register, show a push, report events.

Only `PushManager.prototype.subscribe` is replaced: it needs a browser vendor's
push service, unreachable here, so it answers with a subscription minted by
the demo's Web Push emulator (restricted to the app's VAPID key). Everything
else is real: the page is a shop's own site (a small server in the test,
serving the page and its copy of `clarion-sw.js`, as a web developer would),
it loads `clarion.js` from Clarion and calls the API on Clarion's origin
(another origin, so CORS is exercised too); the
worker receives, through the DevTools protocol (`ServiceWorker.deliverPushMessage`),
exactly the plaintext Clarion encrypted for the emulator.

A click on an OS notification cannot be simulated headless (no notification
UI, and CDP has no command for it), so the click test calls the worker's own
click handler, `self.clarion.openPush(notification)`, the function its
`notificationclick` listener runs, on the notification the push showed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from clarion.delivery.sender import push_id
from clarion.model.content import Action, Content
from clarion.model.message import Message
from clarion.providers.webpush import render_payload
from tests.web.conftest import DESKTOP, DemoServer
from tests.web.helpers import fresh_user, send_and_wait

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="{api}/sdk/clarion.js"></script></head>
<body><main><h1>Shop</h1>
<button id="subscribe">Get notified</button> <button id="unsubscribe">Stop</button>
<script>
  Clarion.init({{apiBase: "{api}", appId: "{app}", clientKey: "{key}",
                serviceWorker: "/clarion-sw.js", userId: "{user}"}});
  const done = (r) => {{ window.result = r; }};
  const failed = (e) => {{ window.result = {{error: String(e)}}; }};
  document.getElementById("subscribe").onclick = () => Clarion.subscribe().then(done, failed);
  document.getElementById("unsubscribe").onclick = () => Clarion.unsubscribe().then(done, failed);
</script></main></body></html>"""

FAKE_SUBSCRIBE = """(minted) => {
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.subscribedWith = btoa(String.fromCharCode(...key))
      .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    return {endpoint: minted.endpoint, options: options, toJSON: () => minted,
            unsubscribe: async () => true};
  };
}"""


def _wait(check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


class _ShopHandler(BaseHTTPRequestHandler):
    """The web developer's site: one page and its copy of clarion-sw.js."""

    files: ClassVar[dict[str, tuple[bytes, str]]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        body, kind = self.files.get(path, (b"not found", "text/plain"))
        self.send_response(200 if path in self.files else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def shop(clarion_demo: DemoServer, browser: Any) -> Iterator[dict[str, Any]]:
    """A shop's page on its own origin (not the API's), with notifications allowed."""
    user = fresh_user("web")
    with clarion_demo.api(clarion_demo.client_key) as api:
        key = api.get(f"/v1/apps/{clarion_demo.app_id}/webpush/public-key").json()
        worker_script = api.get("/sdk/clarion-sw.js").content
    key = key["vapid_public_key"]
    with clarion_demo.emulator("webpush") as emulator:
        minted = emulator.post("/_emulator/subscriptions", json={"application_server_key": key})
        assert minted.status_code == 201
    html = PAGE.format(
        api=clarion_demo.base_url, app=clarion_demo.app_id, key=clarion_demo.client_key, user=user
    )
    _ShopHandler.files = {
        "/shop": (html.encode(), "text/html; charset=utf-8"),
        "/clarion-sw.js": (worker_script, "text/javascript"),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ShopHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    context = browser.new_context(
        viewport=DESKTOP, locale="de-DE", timezone_id="Europe/Berlin", service_workers="allow"
    )
    context.grant_permissions(["notifications"], origin=origin)
    page = context.new_page()
    page.add_init_script(f"({FAKE_SUBSCRIBE})({json.dumps(minted.json())})")
    page.goto(f"{origin}/shop")
    try:
        yield {
            "page": page,
            "context": context,
            "origin": origin,
            "user": user,
            "vapid": key,
            "subscription": minted.json(),
        }
    finally:
        context.close()
        server.shutdown()
        server.server_close()


def _subscribe(shop: dict[str, Any]) -> str:
    page = shop["page"]
    page.click("#subscribe")
    result = _wait(lambda: page.evaluate("window.result"), "Clarion.subscribe()")
    assert "error" not in result, result
    device_id: str = result["deviceId"]
    return device_id


def test_subscribe_registers_the_browser_with_its_time_zone_locale_and_consent(
    clarion_demo: DemoServer, shop: dict[str, Any], screenshots: Any
) -> None:
    device_id = _subscribe(shop)
    assert shop["page"].evaluate("window.subscribedWith") == shop["vapid"].rstrip("=")
    with clarion_demo.api() as api:
        device = api.get(f"/v1/apps/{clarion_demo.app_id}/devices/{device_id}").json()
        history = api.get(f"/v1/apps/{clarion_demo.app_id}/devices/{device_id}/consent").json()
    assert device["platform"] == "webpush"
    assert device["user_id"] == shop["user"]
    assert (device["timezone"], device["locale"]) == ("Europe/Berlin", "de-DE")
    assert device["consent"] == "granted"
    assert json.dumps(device).count(shop["subscription"]["endpoint"]) == 1
    assert [(e["new_status"], e["source"]) for e in history["items"]] == [("granted", "os_prompt")]
    screenshots(shop["page"], "sdk-shop")

    shop["page"].evaluate("window.result = null")
    shop["page"].click("#unsubscribe")
    _wait(lambda: shop["page"].evaluate("window.result"), "Clarion.unsubscribe()")
    with clarion_demo.api() as api:
        history = api.get(f"/v1/apps/{clarion_demo.app_id}/devices/{device_id}/consent").json()
    assert history["items"][-1]["new_status"] == "revoked"
    assert history["items"][-1]["source"] == "web_sdk_unsubscribe"


def _registration_id(cdp: Any, page: Any, origin: str) -> str:
    found: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")

    def ours() -> str | None:
        page.wait_for_timeout(50)
        scopes = [r for r in found if r["scopeURL"].startswith(origin) and not r["isDeleted"]]
        return scopes[-1]["registrationId"] if scopes else None

    registration: str = _wait(ours, "the service worker registration")
    return registration


def _delivery(demo: DemoServer, notification_id: str, device_id: str) -> dict[str, Any]:
    with demo.api() as api:
        path = f"/v1/apps/{demo.app_id}/notifications/{notification_id}/deliveries/{device_id}"
        found: dict[str, Any] = api.get(path).json()
        return found


def test_worker_shows_the_push_clarion_encrypted_and_reports_received_and_opened(
    clarion_demo: DemoServer, shop: dict[str, Any]
) -> None:
    device_id = _subscribe(shop)
    page, origin = shop["page"], shop["origin"]
    content = {
        "title": "Your order shipped",
        "body": "Arrives Thursday",
        "url": f"{origin}/orders/1234",
        "data": {"order_id": "1234"},
        "actions": [{"id": "track", "title": "Track", "url": f"{origin}/track/1234"}],
    }
    body = {"audience": {"users": [shop["user"]]}, "content": content, "collapse_key": "o-1234"}
    status = send_and_wait(clarion_demo, body)
    assert status["stats"]["sent"] == 1, status
    # What the push service got, decrypted as the browser would, is what render_payload gives.
    message = Message(
        content=Content(
            title=content["title"],
            body=content["body"],
            url=content["url"],
            data=content["data"],
            actions=(Action("track", "Track", f"{origin}/track/1234"),),
        ),
        push_id=push_id(status["id"], device_id),
        collapse_key="o-1234",
        notification_id=status["id"],
        device_id=device_id,
    )
    plaintext = json.dumps(render_payload(message), ensure_ascii=False, separators=(",", ":"))
    with clarion_demo.emulator("webpush") as emulator:
        items = emulator.get("/_emulator/requests").json()["items"]
    endpoint_token = shop["subscription"]["endpoint"].rsplit("/", 1)[1]
    pushed = [base64.b64decode(r["decrypted"]) for r in items if r["token"] == endpoint_token]
    assert pushed == [plaintext.encode("utf-8")]

    cdp = shop["context"].new_cdp_session(page)
    registration = _registration_id(cdp, page, origin)
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration, "data": plaintext},
    )
    shown = _wait(
        lambda: page.evaluate(
            """async () => {
                const reg = await navigator.serviceWorker.getRegistration("/");
                return (await reg.getNotifications()).map(n => ({
                    title: n.title, body: n.body, tag: n.tag,
                    actions: n.actions.map(a => a.action), url: n.data.url}));
            }"""
        ),
        "the notification",
    )
    assert shown == [
        {
            "title": "Your order shipped",
            "body": "Arrives Thursday",
            "tag": "o-1234",
            "actions": ["track"],
            "url": f"{origin}/orders/1234",
        }
    ]
    received = _wait(
        lambda: _delivery(clarion_demo, status["id"], device_id)["received_at"], "received"
    )
    assert received

    worker = _wait(lambda: shop["context"].service_workers, "the service worker")[0]
    outcome = worker.evaluate(
        """async () => {
            const [shown] = await registration.getNotifications();
            return (await self.clarion.openPush(shown, "")).map(r => r.status);
        }"""
    )
    assert outcome[0] == "fulfilled"  # the report; opening a window needs a real click
    opened = _wait(lambda: _delivery(clarion_demo, status["id"], device_id)["opened_at"], "opened")
    assert opened
    assert (
        page.evaluate(
            """async () => (await (await navigator.serviceWorker.getRegistration("/"))
                        .getNotifications()).length"""
        )
        == 0
    )
