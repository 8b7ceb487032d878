"""`clarion send`: send a notification from the terminal and watch its funnel fill.

It talks to a running Clarion over the HTTP API, like any app server would.
Without `--app`/`--key` it uses the demo app that `clarion demo` created.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from clarion.config import Settings
from clarion.demo import DEMO_FILE

BAR_WIDTH = 30
FINAL = {"completed", "cancelled"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--user", action="append", help="a user id (repeat for several)")
    target.add_argument("--topic", help="a topic name")
    target.add_argument("--filter", help="a filter expression")
    target.add_argument("--all", action="store_true", help="every device of the app")
    parser.add_argument("--title", required=True)
    parser.add_argument("--body")
    parser.add_argument("--category")
    parser.add_argument("--app", help="app id (default: the demo app)")
    parser.add_argument("--key", help="the app's server key (default: the demo app's)")
    parser.add_argument("--api", help="Clarion's base URL (default: CLARION_HOST:CLARION_PORT)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the funnel")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait at most")


def audience(args: argparse.Namespace) -> dict[str, Any]:
    if args.user:
        return {"users": args.user}
    if args.topic:
        return {"topic": args.topic}
    if args.filter:
        return {"filter": args.filter}
    return {"all": True}


def progress_line(status: dict[str, Any]) -> str:
    """`[#####-----] 5/10 sent · 1 failed · 2 suppressed · completed`."""
    stats = status["stats"]
    failed = sum(stats["failed"].values())
    suppressed = sum(stats["suppressed"].values())
    done = stats["sent"] + failed + suppressed + stats["expired"] + stats["cancelled"]
    total = max(stats["targeted"], 1)
    filled = round(BAR_WIDTH * done / total)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return (
        f"[{bar}] {stats['sent']}/{stats['targeted']} sent · {failed} failed · "
        f"{suppressed} suppressed · {status['status']}"
    )


def run_send(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    app_id, key = args.app, args.key
    if not (app_id and key):
        demo = _demo(settings.data_dir / DEMO_FILE)
        if demo is None:
            print("clarion send: give --app and --key (no demo app found)", file=sys.stderr)
            return 2
        app_id, key = app_id or demo["app_id"], key or demo["server_key"]
    base = args.api or f"http://{settings.host}:{settings.port}"
    body: dict[str, Any] = {"audience": audience(args), "content": {"title": args.title}}
    if args.body:
        body["content"]["body"] = args.body
    if args.category:
        body["category"] = args.category
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        try:
            answer = client.post(f"/v1/apps/{app_id}/notifications", json=body)
        except httpx.HTTPError as exc:
            print(f"clarion send: cannot reach {base}: {exc}", file=sys.stderr)
            return 1
        if answer.status_code != 202:
            print(f"clarion send: {answer.status_code} {answer.text}", file=sys.stderr)
            return 1
        notification_id = answer.json()["id"]
        print(f"notification {notification_id} accepted", file=out)
        if args.no_wait:
            return 0
        deadline = time.monotonic() + args.timeout
        while True:
            status = client.get(f"/v1/apps/{app_id}/notifications/{notification_id}").json()
            print("\r" + progress_line(status), end="", file=out, flush=True)
            if status["status"] in FINAL or time.monotonic() > deadline:
                print(file=out)
                return 0 if status["status"] in FINAL else 1
            time.sleep(0.2)


def _demo(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
