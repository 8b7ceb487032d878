"""Device registration throughput and latency, load from `wrk` in its own process.

A real `clarion serve` (SQLite) takes `POST /v1/apps/{app}/devices` with a
fresh APNs token on every request (a Lua script makes them). The reference
is the same server's `/healthz`, which measures the HTTP stack alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from bench.clarion_process import ADMIN_KEY, clarion_serve
from bench.report import table

DURATION = os.environ.get("CLARION_BENCH_API_SECONDS", "10")
CONNECTIONS = os.environ.get("CLARION_BENCH_API_CONNECTIONS", "32")

LUA = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local hex = "0123456789abcdef"
request = function()
  local token = {}
  for i = 1, 64 do
    local n = math.random(1, 16)
    token[i] = hex:sub(n, n)
  end
  local body = '{"platform":"apns","token":"' .. table.concat(token) ..
    '","user_id":"u-' .. math.random(1, 100000) ..
    '","timezone":"Europe/Paris","consent":{"status":"granted","source":"os_prompt"}}'
  return wrk.format(nil, "%(path)s", nil, body)
end
"""


def _wrk(url: str, script: Path | None = None) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from a wrk run."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", output)
        assert match is not None, output
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        print(f"  wrk saw {errors.group(1)} non-2xx answers")
    return rate, percentile("50"), percentile("99")


def main() -> None:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk")
        return
    with tempfile.TemporaryDirectory(prefix="clarion-bench-") as name:
        directory = Path(name)
        with clarion_serve(directory) as clarion:
            request = urllib.request.Request(  # noqa: S310
                f"{clarion.base}/v1/apps",
                data=json.dumps({"name": "Bench"}).encode(),
                headers={
                    "authorization": f"Bearer {ADMIN_KEY}",
                    "content-type": "application/json",
                },
            )
            with urllib.request.urlopen(request) as answer:  # noqa: S310
                app = json.load(answer)
            script = directory / "register.lua"
            path = f"/v1/apps/{app['id']}/devices"
            script.write_text(LUA % {"key": app["client_key"], "path": path})
            health = _wrk(f"{clarion.base}/healthz")
            register = _wrk(f"{clarion.base}{path}", script)
    rows = [
        (
            "device registration (SQLite)",
            f"{register[0]:,.0f} req/s",
            f"{health[0]:,.0f} req/s (/healthz)",
            f"{register[0] / health[0]:.2f}",
        ),
        (
            "registration p50",
            f"{register[1]:.1f} ms",
            f"{health[1]:.1f} ms (/healthz)",
            f"{register[1] / max(health[1], 1e-6):.1f}",
        ),
        (
            "registration p99",
            f"{register[2]:.1f} ms",
            f"{health[2]:.1f} ms (/healthz)",
            f"{register[2] / max(health[2], 1e-6):.1f}",
        ),
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
