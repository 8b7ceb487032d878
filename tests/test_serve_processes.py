"""`clarion serve --api-processes N`: N processes answer on one port, and stop together."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from clarion.serve_processes import reuse_port_socket

CLARION = [sys.executable, "-m", "clarion.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(CLARION_DATA_DIR=str(tmp_path / "var"), **extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def test_two_sockets_share_a_port() -> None:
    first = reuse_port_socket("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        second = reuse_port_socket("127.0.0.1", port)
        second.close()
    finally:
        first.close()


def test_a_count_below_one_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLARION, "serve"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, CLARION_API_PROCESSES="0"),
        cwd=tmp_path,
        timeout=30,
    )
    assert result.returncode == 2
    assert "CLARION_API_PROCESSES" in result.stderr


def test_processes_answer_on_one_port_and_stop_together(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [*CLARION, "serve", "--api-processes", "3"],
        env=_env(tmp_path, CLARION_PORT=str(port)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as answer:  # noqa: S310
                    assert json.load(answer) == {"status": "ready"}
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        others = _children(process.pid)
        assert len(others) == 2  # listening before the first one answered
        for _ in range(20):  # fresh connections, spread by the kernel; all answer
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as answer:  # noqa: S310
                assert answer.status == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "served by 3 processes" in output
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in others):  # they stop with the first one
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status and "(dead)" not in status
