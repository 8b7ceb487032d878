"""The command line and a real `clarion serve` process, as a user runs them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CLARION = [sys.executable, "-m", "clarion.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(CLARION_DATA_DIR=str(tmp_path / "var"), **extra)
    return env


def test_help_explains_each_command() -> None:
    result = subprocess.run([*CLARION, "--help"], capture_output=True, text=True, check=True)
    for command in ("serve", "migrate", "apps", "demo"):
        assert command in result.stdout


def test_apps_create_prints_keys_once(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLARION, "apps", "create", "Corner Shop"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    assert "clr_srv_" in result.stdout
    assert "clr_cli_" in result.stdout
    database = (tmp_path / "var" / "clarion.db").read_bytes()
    server_key = next(w for w in result.stdout.split() if w.startswith("clr_srv_"))
    assert server_key.encode() not in database


def test_bad_setting_exits_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLARION, "migrate"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, CLARION_PORT="http"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "CLARION_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_until_ready(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A real `clarion serve [args]` on a free port, once `/readyz` answers; and its base URL.

    The caller terminates it (its output, merged, is read with `communicate`).
    """
    port = _free_port()
    process = subprocess.Popen(
        [*CLARION, "serve", *args],
        env=_env(tmp_path, CLARION_PORT=str(port)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as answer:  # noqa: S310
                assert json.load(answer) == {"status": "ready"}
                return process, base
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                process.communicate()
                raise
            time.sleep(0.2)


def test_serve_migrates_and_answers_the_api(tmp_path: Path) -> None:
    process, base = serve_until_ready(tmp_path)
    try:
        admin_key = (tmp_path / "var" / "admin.key").read_text().strip()
        request = urllib.request.Request(  # noqa: S310
            f"{base}/v1/apps",
            data=json.dumps({"name": "Live"}).encode(),
            headers={"authorization": f"Bearer {admin_key}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            assert answer.status == 201
            assert json.load(answer)["server_key"].startswith("clr_srv_")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert admin_key in output
