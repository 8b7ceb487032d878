"""`clarion serve --api-processes N`: N processes answer on one port, and stop together."""

import subprocess
import time
import urllib.request
from pathlib import Path

from clarion.serve_processes import reuse_port_socket
from tests.test_cli import CLARION, _env, serve_until_ready


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
    process, base = serve_until_ready(tmp_path, "--api-processes", "3")
    try:
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
