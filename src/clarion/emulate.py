"""`clarion emulate`: every push-service emulator in one process, ready to use.

Why: trying Clarion, or testing an app's backend in CI, should need no Apple,
Google, Microsoft, Amazon, Huawei or BlackBerry account. The emulators listen on
127.0.0.1 with TLS (HTTP/2 where the real service has it); one throw-away CA
signs all their certificates, so a Clarion started with

    CLARION_CA_FILE=<printed path>  CLARION_ALLOW_PRIVATE_ENDPOINTS=1

trusts them and may reach loopback. For each provider a credentials body is
printed (and written to `credentials.json`) that can be PUT as is to
`/v1/apps/{app}/providers/{provider}`; the bodies hold throw-away keys the
emulators made, never real secrets. Devices: APNs takes any hex token, FCM
and HMS any token, ADM any registration id, WNS any channel URI on its
server, Web Push needs a subscription minted by its `/_emulator/subscriptions`,
BlackBerry any PIN (8 hex digits) through its PAP gateway.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clarion.emulators.adm import AdmEmulator
from clarion.emulators.apns import ApnsEmulator
from clarion.emulators.blackberry import BlackBerryEmulator
from clarion.emulators.fcm import FcmEmulator
from clarion.emulators.hms import HmsEmulator
from clarion.emulators.server import EmulatorServer
from clarion.emulators.tls import make_tls_files
from clarion.emulators.webpush import WebPushEmulator
from clarion.emulators.wns import WnsEmulator

BUNDLE_ID = "com.example.app"
FCM_PROJECT = "clarion-demo"
HMS_APP_ID = "100000001"


@dataclass(frozen=True, slots=True)
class RunningEmulators:
    """The emulators, the CA bundle that trusts them, and a credentials body each."""

    apns: ApnsEmulator
    fcm: FcmEmulator
    webpush: WebPushEmulator
    wns: WnsEmulator
    adm: AdmEmulator
    hms: HmsEmulator
    ca_file: Path
    credentials: dict[str, dict[str, Any]]
    blackberry: BlackBerryEmulator

    @property
    def urls(self) -> dict[str, str]:
        return {
            "apns": self.apns.url,
            "fcm": self.fcm.url,
            "webpush": self.webpush.url,
            "wns": self.wns.url,
            "adm": self.adm.url,
            "hms": self.hms.url,
            "blackberry": self.blackberry.url,
        }


@asynccontextmanager
async def running_emulators(directory: Path) -> AsyncIterator[RunningEmulators]:
    """Start every emulator on loopback; writes `tls/` (the CA) and `credentials.json`."""
    tls = make_tls_files(directory / "tls")
    apns = ApnsEmulator(topics=(BUNDLE_ID,))
    fcm = FcmEmulator(tls=True)
    webpush = WebPushEmulator(tls=True)
    wns = WnsEmulator(tls=True, accept_unknown_channels=True)
    adm = AdmEmulator(tls=True, accept_unknown_registrations=True)
    hms = HmsEmulator(tls=True)
    blackberry = BlackBerryEmulator(tls=True, accept_unknown_addresses=True)
    async with AsyncExitStack() as stack:
        for emulator in (apns, fcm, webpush, wns, adm, hms, blackberry):
            # One CA for all of them, so one CLARION_CA_FILE trusts every emulator.
            server = emulator.server
            if isinstance(server, EmulatorServer):
                server.tls_files = tls
            await stack.enter_async_context(emulator)
        hms_secret = secrets.token_urlsafe(24)
        hms.add_app(HMS_APP_ID, hms_secret)
        credentials: dict[str, dict[str, Any]] = {
            "apns": {
                "auth": "token",
                "key_id": "KEY0000001",
                "team_id": "TEAM000001",
                "private_key": apns.new_signing_key("TEAM000001", "KEY0000001"),
                "bundle_id": BUNDLE_ID,
                "environment": apns.environment,
                "endpoint": apns.url,
            },
            "fcm": {"service_account": fcm.service_account(FCM_PROJECT), "endpoint": fcm.url},
            "webpush": {"subject": "mailto:demo@example.com"},
            "wns": {
                "client_id": wns.client_id,
                "client_secret": wns.client_secret,
                "token_url": wns.token_url,
            },
            "adm": {
                "client_id": adm.client_id,
                "client_secret": adm.client_secret,
                "token_url": adm.token_url,
                "endpoint": adm.url,
            },
            "hms": {
                "app_id": HMS_APP_ID,
                "client_secret": hms_secret,
                "token_url": hms.token_url,
                "endpoint": hms.url,
            },
            "blackberry": {
                "endpoint": blackberry.push_url,
                "application_id": blackberry.application_id,
                "password": blackberry.password,
                "address_format": "pin",
            },
        }
        _write_credentials(directory, credentials)
        yield RunningEmulators(
            apns, fcm, webpush, wns, adm, hms, tls.ca_file, credentials, blackberry
        )


def _write_credentials(directory: Path, credentials: dict[str, dict[str, Any]]) -> None:
    target = directory / "credentials.json"
    target.touch(mode=0o600)
    target.write_text(json.dumps(credentials, indent=2) + "\n")


def describe(running: RunningEmulators) -> str:
    """What `clarion emulate` prints: URLs, settings, and a credentials body per provider."""
    lines = ["Push-service emulators on loopback:"]
    lines += [f"  {name:8} {url}" for name, url in running.urls.items()]
    lines += [
        "",
        "Start Clarion with:",
        f"  CLARION_CA_FILE={running.ca_file}",
        "  CLARION_ALLOW_PRIVATE_ENDPOINTS=1",
        "",
        "Credentials (PUT each body to /v1/apps/{app}/providers/{provider}):",
    ]
    for name, body in running.credentials.items():
        lines.append(f"  {name}: {json.dumps(body, separators=(',', ':'))}")
    lines += [
        "",
        "Device tokens: apns any hex token; fcm, hms, adm any token; blackberry any PIN;",
        f"  wns a channel like {running.wns.url}/?token=device-1;",
        f"  webpush a subscription from POST {running.webpush.url}/_emulator/subscriptions",
        f"Recorded requests: GET <emulator>/_emulator/requests. Also in {running.ca_file.parent}.",
        "Emulators ready; Ctrl-C stops them.",
    ]
    return "\n".join(lines)


async def run_emulate(directory: Path) -> int:
    """Run the emulators until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_emulators(directory) as running:
        print(describe(running), flush=True)
        await stop.wait()
    return 0
