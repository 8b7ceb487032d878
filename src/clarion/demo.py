"""`clarion demo` (what `make run` starts): Clarion embedded, with the emulators wired in.

Why: the first minute should show the main job working. The six emulators
run in the same process; a demo app (kept across restarts in
`var/demo.json`) gets fresh credentials for them at every start, and the
terminal shows three commands — register a device, send, read the status —
that work as printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from clarion.clock import Clock
from clarion.config import Settings
from clarion.emulate import RunningEmulators
from clarion.model.platform import Platform
from clarion.providers.outbound import OutboundPolicy
from clarion.providers.registry import validate_credentials
from clarion.store import apps as app_store
from clarion.store import credentials as credential_store
from clarion.store.db import Database
from clarion.store.sealing import Sealer

DEMO_FILE = "demo.json"
EMULATORS_FILE = "emulators.json"
"""The emulators' URLs and CA file, for tools and browser tests driving the demo."""
DEMO_USER = "demo-user"
DEMO_TOKEN = "demo-fcm-token-0001"  # noqa: S105 - a device token, not a secret


def demo_settings(settings: Settings, emulators: RunningEmulators) -> Settings:
    """The settings with the emulators trusted and loopback endpoints allowed."""
    return dataclasses.replace(settings, ca_file=emulators.ca_file, allow_private_endpoints=True)


async def prepare_demo_app(
    database: Database, settings: Settings, clock: Clock, emulators: RunningEmulators
) -> dict[str, str]:
    """The demo app's id and keys, creating it once; its credentials point at the emulators."""
    path = settings.data_dir / DEMO_FILE
    known = _read(path)
    async with database.write() as conn:
        app = await app_store.get_app(conn, known["app_id"]) if known else None
        if app is None or known is None:
            app, server, client = await app_store.create_app(conn, name="Demo", now=clock.now())
            known = {"app_id": app.id, "server_key": server.key, "client_key": client.key}
            _write(path, known)
        policy = OutboundPolicy(allow_private=True)
        sealer = Sealer(settings.secret_key)
        for name, body in emulators.credentials.items():
            validated = validate_credentials(Platform(name), body, policy=policy, now=clock.now())
            await credential_store.put_credential(
                conn,
                sealer,
                app.id,
                name,
                validated.config,
                public=validated.public,
                expires_at=validated.expires_at,
                now=clock.now(),
            )
    _write(
        settings.data_dir / EMULATORS_FILE,
        {**emulators.urls, "ca_file": str(emulators.ca_file.resolve())},
    )
    return known


def _read(path: Path) -> dict[str, str] | None:
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and {"app_id", "server_key", "client_key"} <= set(data):
        return {k: str(data[k]) for k in ("app_id", "server_key", "client_key")}
    return None


def _write(path: Path, data: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)


def instructions(base: str, demo: dict[str, str]) -> str:
    """The three commands the demo prints; they work as printed in a POSIX shell."""
    app = f"{base}/v1/apps/{demo['app_id']}"
    client = f"-H 'Authorization: Bearer {demo['client_key']}'"
    server = f"-H 'Authorization: Bearer {demo['server_key']}'"
    json_type = "-H 'Content-Type: application/json'"
    device = json.dumps(
        {
            "platform": "fcm",
            "token": DEMO_TOKEN,
            "user_id": DEMO_USER,
            "consent": {"status": "granted", "source": "os_prompt"},
        }
    )
    note = json.dumps(
        {
            "audience": {"users": [DEMO_USER]},
            "content": {"title": "Hello from Clarion", "body": "Your first push"},
        }
    )
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])'"
    return "\n".join(
        [
            f"Demo app   {demo['app_id']}",
            f"server key {demo['server_key']}",
            f"client key {demo['client_key']}",
            "",
            "Try it (copy and paste):",
            f"  curl -s -X POST {app}/devices {client} {json_type} -d '{device}'",
            f"  NTF=$(curl -s -X POST {app}/notifications {server} {json_type} -d '{note}' "
            f"| {extract})",
            f"  curl -s {app}/notifications/$NTF {server}",
        ]
    )
