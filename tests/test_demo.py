"""`make run`'s first minute: the printed commands deliver a push to the emulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import _free_port

pytestmark = pytest.mark.slow


class Demo:
    def __init__(self, cwd: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
        env["CLARION_PORT"] = str(port)
        self.log = cwd / "demo.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clarion.cli", "demo"],
                cwd=cwd,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def printed(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if "Uvicorn running" in text:
                return text
            assert self.process.poll() is None, text
            time.sleep(0.2)
        raise AssertionError(self.log.read_text())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Demo, int, Path]]:
    port = _free_port()
    running = Demo(tmp_path, port)
    yield running, port, tmp_path
    if running.process.poll() is None:
        running.stop()


def _shell(command: str) -> str:
    result = subprocess.run(
        ["/bin/bash", "-c", command], capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout


def test_printed_commands_deliver_and_the_status_shows_sent(
    demo: tuple[Demo, int, Path],
) -> None:
    running, port, cwd = demo
    text = running.printed()
    commands = [
        line.strip()
        for line in text.splitlines()
        if line.startswith("  curl") or line.startswith("  NTF=")
    ]
    assert len(commands) == 3
    register, send, status = commands
    device = json.loads(_shell(register))
    assert device["consent"] == "granted"
    script = f"{send}\nfor i in $(seq 50); do {status} > out.json; "
    script += 'grep -q \'"status":"completed"\' out.json && break; sleep 0.2; done; cat out.json'
    answer = json.loads(
        subprocess.run(
            ["/bin/bash", "-c", script],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
            timeout=60,
        ).stdout
    )
    assert answer["status"] == "completed"
    assert answer["stats"]["sent"] == 1

    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env["CLARION_PORT"] = str(port)
    sent = subprocess.run(
        [sys.executable, "-m", "clarion.cli", "send", "--user", "demo-user", "--title", "Again"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    assert "1/1 sent" in sent.stdout
    assert "completed" in sent.stdout

    app_id = re.search(r"Demo app\s+(\S+)", text)
    assert app_id is not None
    running.stop()
    again = Demo(cwd, port)
    try:
        assert app_id.group(1) in again.printed()
    finally:
        again.stop()
