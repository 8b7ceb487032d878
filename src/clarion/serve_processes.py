"""More than one API process on one port (`clarion serve --api-processes N`).

One process serves at most one core's worth of requests: device
registration spends about 300 us of Python per request (HTTP parsing,
FastAPI, validation, the batch's database work), so one process tops out
near 3,000 registrations/s with a whole core to itself. With N processes,
each binds its own listening socket to the same address with SO_REUSEPORT
and the kernel spreads incoming connections across them. The first process
runs the worker (if any); the others serve the API only (`--no-workers`),
each with its own pool, group commit and auth caches (so a key revoked
through one process is still accepted by the others for up to
CLARION_AUTH_CACHE_TTL, 1 s by default).

A process started here reports that its socket is listening (a line on its
stdout) before the first one starts answering, so the connections a client
opens once the API answers are spread over all of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence

READY = "clarion-api-listening"


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other processes may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def announce_listening() -> None:
    """Tell the starting process this one's socket is listening (see `start`), and
    stop (SIGTERM, a graceful shutdown) when that process is gone.

    uvicorn ends the starting process by raising the SIGTERM it caught again once
    it has shut down, so no `finally` of the starting process runs; its end
    closes this process's stdin, which is how this one learns it.
    """
    print(READY, flush=True)
    threading.Thread(target=_stop_with_parent, name="clarion-parent-watch", daemon=True).start()


def _stop_with_parent() -> None:
    while sys.stdin.buffer.read(4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def start(count: int, options: Sequence[str]) -> list[subprocess.Popen[str]]:
    """Start `count` more API processes (`clarion serve --api-process ...options`).

    Returns once each has its socket listening; if one exits before that, the
    others are stopped and RuntimeError is raised.
    """
    command = [sys.executable, "-m", "clarion.cli", "serve", "--api-process", *options]
    processes: list[subprocess.Popen[str]] = []
    try:
        for _ in range(count):
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=os.environ.copy(),
            )
            processes.append(process)
        for process in processes:
            assert process.stdout is not None  # noqa: S101 - stdout=PIPE above
            line = process.stdout.readline()
            if line.strip() != READY:
                raise RuntimeError(f"an API process exited while starting ({process.poll()})")
    except BaseException:
        stop(processes)
        raise
    return processes


def stop(processes: Sequence[subprocess.Popen[str]], timeout: float = 10.0) -> None:
    """SIGTERM the processes (uvicorn finishes the requests in flight), then wait.

    Processes left running when this one is ended otherwise stop by themselves
    (`announce_listening`)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
