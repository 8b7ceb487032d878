"""`clarion emulate`: the printed credentials work against the emulators as they are."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from clarion.clock import SystemClock
from clarion.emulate import running_emulators
from clarion.model.content import Content
from clarion.model.message import Message, Recipient
from clarion.model.outcome import Sent
from clarion.model.platform import Platform
from clarion.providers.outbound import OutboundPolicy
from clarion.providers.registry import (
    build_provider,
    curl_transport_factory,
    validate_credentials,
)

PRIVATE = OutboundPolicy(allow_private=True)


async def test_each_printed_credentials_body_is_valid_and_delivers_to_its_emulator(
    tmp_path: Path,
) -> None:
    clock = SystemClock()
    async with running_emulators(tmp_path) as emulators:
        assert emulators.ca_file.read_text().count("BEGIN CERTIFICATE") == 1
        subscription = emulators.webpush.subscribe()
        tokens = {
            "apns": secrets.token_hex(32),
            "fcm": "fcm-device-1",
            "webpush": subscription.endpoint,
            "wns": f"{emulators.wns.url}/?token=device-1",
            "adm": "amzn1.adm-registration.v3.device-1",
            "hms": "hms-device-1",
            "blackberry": "2100000a",
        }
        factory = curl_transport_factory(emulators.ca_file)
        message = Message(Content(title="Order shipped", body="Arrives Thursday"), uuid.uuid4())
        outcomes = {}
        for name, body in emulators.credentials.items():
            platform = Platform(name)
            validated = validate_credentials(platform, body, policy=PRIVATE, now=clock.now())
            provider = build_provider(
                platform, validated.config, transport_factory=factory, clock=clock, policy=PRIVATE
            )
            recipient = Recipient(
                "device-1",
                platform,
                tokens[name],
                subscription=subscription if platform is Platform.WEBPUSH else None,
            )
            try:
                outcomes[name] = await provider.send(message, recipient)
            finally:
                await provider.transport.aclose()
    assert all(isinstance(outcome, Sent) for outcome in outcomes.values()), outcomes


async def test_emulator_credentials_are_refused_without_the_private_endpoints_setting(
    tmp_path: Path,
) -> None:
    clock = SystemClock()
    async with running_emulators(tmp_path) as emulators:
        from clarion.providers.registry import InvalidCredentialBody

        with pytest.raises(InvalidCredentialBody, match="endpoint"):
            validate_credentials(
                Platform.APNS,
                emulators.credentials["apns"],
                policy=OutboundPolicy(),
                now=clock.now(),
            )


def test_clarion_emulate_prints_urls_ca_file_and_bodies_and_stops_on_sigint(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env["CLARION_DATA_DIR"] = str(tmp_path / "var")
    process = subprocess.Popen(
        [sys.executable, "-m", "clarion.cli", "emulate", "--dir", str(tmp_path / "emu")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Emulators ready" in line:
                break
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    output = "".join(lines)
    assert process.returncode == 0, errors
    for name in ("apns", "fcm", "webpush", "wns", "adm", "hms", "blackberry"):
        assert f"  {name}: {{" in output
    assert f"CLARION_CA_FILE={tmp_path / 'emu' / 'tls' / 'ca.pem'}" in output
    assert "CLARION_ALLOW_PRIVATE_ENDPOINTS=1" in output
    assert output.count("https://127.0.0.1:") >= 6
    written = json.loads((tmp_path / "emu" / "credentials.json").read_text())
    assert set(written) == {"apns", "fcm", "webpush", "wns", "adm", "hms", "blackberry"}
