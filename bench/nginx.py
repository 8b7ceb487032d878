"""nginx as a stand-in for APNs, fast enough that the client is what gets measured.

It answers `POST /3/device/<token>` with 200 and an `apns-id` header, and with
410 `{"reason":"Unregistered",...}` when the token starts with `BAD_MARKER`,
over TLS with HTTP/2, from a throw-away prefix directory on a free loopback
port. nginx and h2load come from the Debian packages `nginx-light` (or
`nginx`) and `nghttp2-client`; `ensure_tools` installs them when it may.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clarion.emulators.tls import make_tls_files

BAD_MARKER = "dead"
INSTALL_COMMAND = ["apt-get", "install", "-y", "nginx-light", "nghttp2-client"]

_CONFIG = """\
worker_processes 1;
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format stamp '$msec';
    {access_log}
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 3600s;
    http2_max_concurrent_streams 1000;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location ^~ /3/device/{marker} {{
            default_type application/json;
            add_header apns-id $request_id always;
            return 410 '{{"reason":"Unregistered","timestamp":1767225600000}}';
        }}
        location /3/device/ {{
            add_header apns-id $request_id always;
            return 200 '';
        }}
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class Nginx:
    """A running nginx: its base URL and the CA file that signed its certificate."""

    url: str
    ca_file: Path
    access_log: Path | None = None
    """One line per answered request, the time it was answered (`$msec`), when asked for."""


def missing_tools() -> list[str]:
    return [tool for tool in ("nginx", "h2load") if _which(tool) is None]


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")


def ensure_tools() -> bool:
    """Install nginx and h2load as root; otherwise print the command and say no."""
    if not missing_tools():
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing: {' '.join(INSTALL_COMMAND)}")
        subprocess.run(INSTALL_COMMAND, check=False, stdout=subprocess.DEVNULL)
    if missing_tools():
        print(f"missing {', '.join(missing_tools())}; run: sudo {' '.join(INSTALL_COMMAND)}")
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_nginx(*, access_log: bool = False) -> Iterator[Nginx]:
    """Start nginx in the foreground under a temporary prefix; stop it on exit.

    With `access_log` it logs each request's end time, buffered so that the
    log costs nginx little; `AccessLog` counts them.
    """
    nginx = _which("nginx")
    if nginx is None:
        raise RuntimeError("nginx is not installed")
    with tempfile.TemporaryDirectory(prefix="clarion-bench-nginx-") as tmp:
        root = Path(tmp)
        tls = make_tls_files(root / "tls")
        port = free_port()
        log = root / "access.log" if access_log else None
        log_directive = (
            f"access_log {log} stamp buffer=256k flush=100ms;" if log else "access_log off;"
        )
        config = root / "nginx.conf"
        config.write_text(
            _CONFIG.format(
                root=root,
                port=port,
                cert=tls.cert_file,
                key=tls.key_file,
                marker=BAD_MARKER,
                access_log=log_directive,
            )
        )
        process = subprocess.Popen([nginx, "-p", str(root), "-c", str(config)])
        try:
            _wait_for_port(port, process)
            yield Nginx(f"https://127.0.0.1:{port}", tls.ca_file, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.05)
            continue
        return
    raise RuntimeError("nginx did not start listening")


class AccessLog:
    """Reads an nginx `stamp` log incrementally: requests answered since `mark()`, last time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.last = 0.0
        self._offset = 0
        self._partial = b""

    def mark(self) -> None:
        """Forget what was logged so far (h2load, earlier runs)."""
        self.poll()
        self.count = 0
        self.last = 0.0

    def poll(self) -> int:
        """Read new lines; returns the count since `mark()`."""
        if not self.path.exists():
            return self.count
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            data = self._partial + handle.read()
            self._offset = handle.tell()
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if lines:
            self.count += len(lines)
            self.last = max(self.last, float(lines[-1]))
        return self.count
