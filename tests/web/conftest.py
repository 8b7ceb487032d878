"""Browser tests: Debian's Chromium (through Playwright) against a real `clarion demo`.

Shared by the preference-center, SDK and dashboard tests:

- `clarion_demo` starts `clarion demo` (what `make run` starts: API, worker,
  every emulator, a demo app) in a temporary directory on a free port, once
  per session, and kills it at the end.
- `browser` is Chromium at /usr/bin/chromium, headless, one per test module
  (do not mix asyncio tests into a module that uses it); `page` a fresh
  context and page per test at desktop size.
- `screenshots` writes a page at desktop (1280x800) and phone (390x844)
  widths to tests/web/screenshots/ (git-ignored) for a person to look at.
- `axe` injects axe-core (from npm, installed into tests/web/node_modules by
  `npm ci` when missing) and returns the serious and critical violations.

Without /usr/bin/chromium the browser tests are skipped with a message, except
under CI (`CI` set), where they fail: CI must run them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

WEB_TESTS = Path(__file__).parent
SCREENSHOTS = WEB_TESTS / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
START_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class DemoServer:
    """A running `clarion demo` and what it wrote to its `var/`."""

    base_url: str
    admin_key: str
    app_id: str
    server_key: str
    client_key: str
    emulators: dict[str, str]
    """Emulator name → https URL (from var/emulators.json)."""
    ca_file: Path
    """The CA that signed the emulators' certificates."""
    directory: Path
    output: list[str]
    """Lines the process printed so far (for failure messages)."""

    def api(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for the API with `key` (the server key by default)."""
        token = key or self.server_key
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def emulator(self, name: str) -> httpx.Client:
        """An HTTP client for one emulator, trusting the demo's CA."""
        trust = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.Client(base_url=self.emulators[name], verify=trust, timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clarion_command() -> list[str]:
    script = Path(sys.executable).parent / "clarion"
    if script.exists():
        return [str(script), "demo"]
    return [sys.executable, "-c", "from clarion.cli import main; raise SystemExit(main())", "demo"]


@pytest.fixture(scope="session")
def clarion_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    directory = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env |= {"CLARION_PORT": str(port), "CLARION_DATA_DIR": str(directory / "var")}
    process = subprocess.Popen(
        _clarion_command(),
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if "Uvicorn running" in line:
                ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("clarion demo did not start:\n" + "\n".join(output[-40:]))
        var = directory / "var"
        demo = json.loads((var / "demo.json").read_text())
        emulators = json.loads((var / "emulators.json").read_text())
        yield DemoServer(
            base_url=f"http://127.0.0.1:{port}",
            admin_key=(var / "admin.key").read_text().strip(),
            app_id=demo["app_id"],
            server_key=demo["server_key"],
            client_key=demo["client_key"],
            emulators={k: v for k, v in emulators.items() if k != "ca_file"},
            ca_file=Path(emulators["ca_file"]),
            directory=directory,
            output=output,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module.

    Module-scoped on purpose: Playwright's sync API keeps its event loop
    marked as running in this thread while it is started, so asyncio tests
    (and `asyncio.run`) in other modules must not run under a live browser.
    """
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is absent: apt-get install chromium to run the browser tests"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run them)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def screenshots() -> Callable[[Any, str], list[Path]]:
    """`screenshots(page, "name")` writes name-desktop.png and name-phone.png."""

    def take(page: Any, name: str) -> list[Path]:
        SCREENSHOTS.mkdir(exist_ok=True)
        before = page.viewport_size
        written = []
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            target = SCREENSHOTS / f"{name}-{label}.png"
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
        if before:
            page.set_viewport_size(before)
        return written

    return take


def _axe_source() -> str:
    script = WEB_TESTS / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install axe-core for the accessibility checks")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=WEB_TESTS, check=True, timeout=300
        )
    return script.read_text()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return _axe_source()


@pytest.fixture
def axe(axe_source: str) -> Callable[[Any], list[dict[str, Any]]]:
    """`axe(page)`: axe-core's serious and critical violations on the page as it is."""

    def run(page: Any) -> list[dict[str, Any]]:
        page.evaluate(axe_source)
        result = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]]}
            for v in result
            if v["impact"] in ("serious", "critical")
        ]

    return run
