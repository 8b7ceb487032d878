"""The scale-out layout as real processes: `clarion serve --no-workers` and N `clarion worker`.

The soak benchmark needs every Clarion process to be its own process, so
that each one's memory and CPU can be read from /proc while it runs for
minutes, and so that the API is reached over HTTP the way a client
reaches it. Each process logs to its own file in the run's directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.e2e_store import ADMIN_KEY, SECRET
from bench.nginx import Nginx, free_port

READY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Fleet:
    """The API's base URL and every process by name (`api`, `worker1`, ...)."""

    base: str
    processes: dict[str, subprocess.Popen[bytes]]


@contextmanager
def running_fleet(url: str, nginx: Nginx, directory: Path, workers: int) -> Iterator[Fleet]:
    """Start the API and `workers` workers on the store at `url`; SIGTERM them all on exit."""
    port = free_port()
    env = _environment(url, nginx, directory, port)
    processes = {"api": _start(["serve", "--no-workers"], env, directory / "api.log")}
    for index in range(1, workers + 1):
        processes[f"worker{index}"] = _start(["worker"], env, directory / f"worker{index}.log")
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, processes, directory)
        yield Fleet(base, processes)
    finally:
        stop_processes(list(processes.values()))


def _environment(url: str, nginx: Nginx, directory: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(
        CLARION_DATABASE_URL=url,
        CLARION_PORT=str(port),
        CLARION_SECRET_KEY=SECRET.hex(),
        CLARION_ADMIN_KEY=ADMIN_KEY,
        CLARION_ALLOW_PRIVATE_ENDPOINTS="1",
        CLARION_CA_FILE=str(nginx.ca_file),
        CLARION_DATA_DIR=str(directory),
    )
    return env


def _start(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "clarion.cli", *arguments],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )


def _wait_ready(base: str, processes: dict[str, subprocess.Popen[bytes]], directory: Path) -> None:
    """Until the API answers /readyz and every worker has logged that it started."""
    deadline = time.monotonic() + READY_SECONDS
    waiting = set(processes)
    while waiting:
        for name in sorted(waiting):
            process = processes[name]
            if process.poll() is not None:
                log = (directory / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log[-2000:]}")
            if _is_ready(name, base, directory):
                waiting.discard(name)
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {READY_SECONDS:.0f}s: {', '.join(waiting)}")
        time.sleep(0.1)


def _is_ready(name: str, base: str, directory: Path) -> bool:
    if name != "api":
        return b" started" in (directory / f"{name}.log").read_bytes()
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=1):  # noqa: S310 (loopback)
            return True
    except OSError:
        return False


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each one still running, then wait for all (30 s each, then SIGKILL)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
