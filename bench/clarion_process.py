"""Start a real `clarion serve` process for benchmarks, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ADMIN_KEY = "clr_adm_bench-admin-key"
SECRET_HEX = "ab" * 32


@dataclass(frozen=True, slots=True)
class RunningClarion:
    base: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def clarion_serve(directory: Path, **settings: str) -> Iterator[RunningClarion]:
    """`clarion serve` with its own data directory; stopped (SIGTERM) on exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(
        CLARION_DATA_DIR=str(directory / "var"),
        CLARION_PORT=str(port),
        CLARION_ADMIN_KEY=ADMIN_KEY,
        CLARION_SECRET_KEY=SECRET_HEX,
        **settings,
    )
    log = (directory / "clarion.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "clarion.cli", "serve"],
        env=env,
        stdout=log,
        stderr=log,
        cwd=directory,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((directory / "clarion.log").read_text()) from None
                time.sleep(0.1)
        yield RunningClarion(base, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
