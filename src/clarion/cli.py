"""The `clarion` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clarion.clock import SystemClock
from clarion.config import Settings, SettingsError
from clarion.store.db import Database
from clarion.store.migrate import migrate

DESCRIPTION = """Clarion: self-hosted push notifications that respect the recipient.

Settings come from CLARION_* environment variables (or ./clarion.toml);
with no CLARION_DATABASE_URL Clarion runs embedded on SQLite under ./var/."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clarion", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (embedded mode migrates the database first)",
        description="Run the HTTP API on CLARION_HOST:CLARION_PORT.",
    )
    serve.add_argument("--no-workers", action="store_true", help="serve the API only")
    serve.add_argument(
        "--api-processes",
        type=int,
        default=None,
        metavar="N",
        help="serve the API from N processes sharing the port (SO_REUSEPORT; the worker,\n"
        "if any, runs in the first): one process serves at most one core's worth\n"
        "(default: CLARION_API_PROCESSES, else 1)",
    )
    serve.add_argument("--api-process", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="event loop: uvloop (default; about 15%% less CPU per request) or asyncio's own",
    )
    commands.add_parser(
        "worker",
        help="run a sender worker: plans and sends queued notifications",
        description="Claim and run jobs from the store's queue until SIGTERM.",
    )
    commands.add_parser(
        "demo",
        help="run Clarion embedded, ready to try (what `make run` starts)",
        description="Run the API on the embedded default, migrating first.",
    )
    commands.add_parser(
        "migrate",
        help="apply database migrations (PostgreSQL deployments run this on upgrade)",
        description="Bring the database schema to the latest version.",
    )
    send = commands.add_parser(
        "send",
        help="send a notification from the terminal and show its progress",
        description="Send through a running Clarion's API and watch the funnel fill.",
    )
    from clarion.send_cli import add_arguments

    add_arguments(send)
    apps = commands.add_parser("apps", help="manage apps", description="Manage apps.")
    app_commands = apps.add_subparsers(dest="apps_command", metavar="ACTION", required=True)
    create = app_commands.add_parser(
        "create", help="create an app and print its server and client keys"
    )
    create.add_argument("name", help="the app's display name")
    create.add_argument("--timezone", default="UTC", help="the app's default time zone")
    rotate = commands.add_parser(
        "rotate-secret",
        help="re-seal every provider credential under a new secret key",
        description="Re-seal all credentials; the new key replaces ./var/secret.key or is printed.",
    )
    rotate.add_argument("--new-key", help="the new key (32 bytes, base64url); default: generated")
    emulate = commands.add_parser(
        "emulate",
        help="run the six push-service emulators on loopback and print credentials for them",
        description="Run APNs, FCM, Web Push, WNS, ADM and HMS emulators until Ctrl-C.",
    )
    emulate.add_argument("--dir", default="var/emulators", help="where ca.pem and bodies go")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"clarion: {exc}", file=sys.stderr)
        return 2
    if args.command in ("serve", "demo"):
        extra = getattr(args, "api_process", False)
        workers = not (getattr(args, "no_workers", False) or extra)
        count = _api_processes(args)
        if count is None:
            print("clarion: --api-processes (CLARION_API_PROCESSES) must be >= 1", file=sys.stderr)
            return 2
        processes = ApiProcesses(count, extra, _loop_options(args))
        serving = _serve(
            settings, announce=args.command == "demo", workers=workers, processes=processes
        )
        with asyncio.Runner(loop_factory=_loop_factory(args)) as runner:
            return runner.run(serving)
    if args.command == "send":
        from clarion.send_cli import run_send

        return run_send(args, settings)
    if args.command == "worker":
        return asyncio.run(_worker(settings))
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("database is up to date")
        return 0
    if args.command == "rotate-secret":
        from clarion.rotate import run_rotate_secret

        return asyncio.run(run_rotate_secret(settings, args.new_key))
    if args.command == "emulate":
        from pathlib import Path

        from clarion.emulate import run_emulate

        return asyncio.run(run_emulate(Path(args.dir)))
    if args.command == "apps":
        return asyncio.run(_create_app(settings, args.name, args.timezone))
    return 2


def _loop_factory(args: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for serving unless `--loop asyncio` (uvloop comes with uvicorn[standard])."""
    if getattr(args, "loop", "uvloop") != "uvloop":
        return None
    import uvloop

    return uvloop.new_event_loop


async def _migrate(settings: Settings) -> None:
    database = Database(settings.database_url)
    try:
        await migrate(database)
    finally:
        await database.dispose()


async def _create_app(settings: Settings, name: str, timezone: str) -> int:
    from clarion.model.locale import check_timezone
    from clarion.store import apps as app_store

    check_timezone(timezone, "--timezone")
    database = Database(settings.database_url)
    try:
        if settings.is_sqlite:
            await migrate(database)
        async with database.write() as conn:
            app, server, client = await app_store.create_app(
                conn, name=name, now=SystemClock().now(), default_timezone=timezone
            )
    finally:
        await database.dispose()
    print(f"app        {app.id}  ({app.name})")
    print(f"server key {server.key}")
    print(f"client key {client.key}")
    print("Keys are shown only now; Clarion keeps their SHA-256 only.")
    return 0


@dataclass(frozen=True, slots=True)
class ApiProcesses:
    """How many processes serve the API, and whether this one was started by another."""

    count: int = 1
    extra: bool = False
    options: tuple[str, ...] = ()


def _api_processes(args: argparse.Namespace) -> int | None:
    """`--api-processes`, else CLARION_API_PROCESSES, else 1; None if not a count >= 1."""
    given = getattr(args, "api_processes", None)
    if given is None:
        text = os.environ.get("CLARION_API_PROCESSES", "1")
        given = int(text) if text.strip().isdigit() else 0
    return given if given >= 1 else None


def _loop_options(args: argparse.Namespace) -> tuple[str, ...]:
    loop = getattr(args, "loop", None)
    return ("--loop", loop) if loop else ()


async def _serve(
    settings: Settings,
    *,
    announce: bool,
    workers: bool = True,
    processes: ApiProcesses = ApiProcesses(),
) -> int:
    """Serve the API (and a worker); `announce` is the demo: emulators and a ready app."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        demo_text = ""
        if announce:
            from clarion.demo import demo_settings
            from clarion.emulate import running_emulators

            emulators = await stack.enter_async_context(
                running_emulators(settings.data_dir / "emulators")
            )
            settings = demo_settings(settings, emulators)
        database = Database(settings.database_url)
        stack.push_async_callback(database.dispose)
        if settings.is_sqlite:
            await migrate(database)
        if announce:
            from clarion.demo import instructions, prepare_demo_app

            demo = await prepare_demo_app(database, settings, SystemClock(), emulators)
            demo_text = instructions(f"http://{settings.host}:{settings.port}", demo)
        await _run_api(
            settings,
            database,
            workers=workers,
            announce=announce,
            extra=demo_text,
            processes=processes,
        )
    return 0


async def _run_api(
    settings: Settings,
    database: Database,
    *,
    workers: bool,
    announce: bool,
    extra: str,
    processes: ApiProcesses = ApiProcesses(),
) -> None:
    import uvicorn

    from clarion import serve_processes
    from clarion.api.app import create_app
    from clarion.api.services import Services
    from clarion.delivery.runtime import build_runtime

    clock = SystemClock()
    runtime = build_runtime(database, settings, clock)
    worker = runtime.worker
    services = Services(
        settings=settings,
        database=database,
        clock=clock,
        on_enqueue=worker.wake if workers else (lambda: None),
        metrics=worker.metrics,
    )
    api = create_app(services)
    shared = processes.count > 1 or processes.extra
    sockets = [serve_processes.reuse_port_socket(settings.host, settings.port)] if shared else None
    others = []
    if processes.extra:
        serve_processes.announce_listening()  # its stdout is the starting process's pipe
    else:
        base = f"http://{settings.host}:{settings.port}"
        others = serve_processes.start(processes.count - 1, processes.options)
        print(f"Clarion API on {base}  (OpenAPI: {base}/openapi.json)", flush=True)
        if processes.count > 1:
            print(f"  served by {processes.count} processes", flush=True)
        if "admin_key" in settings.generated or announce:
            where = settings.data_dir / "admin.key"
            print(f"admin key  {settings.admin_key}  (kept in {where})", flush=True)
        if extra:
            print(extra, flush=True)
    config = uvicorn.Config(
        api, host=settings.host, port=settings.port, log_level="info", access_log=False
    )
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stop)) if workers else None
    _freeze_startup_objects()
    try:
        await uvicorn.Server(config).serve(sockets=sockets)
    finally:
        serve_processes.stop(others)
        stop.set()
        if worker_task is not None:
            await worker_task
        await runtime.aclose()


def _freeze_startup_objects() -> None:
    """Exempt what start-up built from the garbage collector's full passes.

    Modules, the app, its routes and schemas never die; a full collection
    walked them all and paused every request in flight for 50-130 ms.
    """
    import gc

    gc.collect()
    gc.freeze()


async def _worker(settings: Settings) -> int:
    import signal

    from clarion.delivery.runtime import build_runtime

    database = Database(settings.database_url)
    clock = SystemClock()
    runtime = build_runtime(database, settings, clock)
    worker = runtime.worker
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"Clarion worker {worker.owner} started", flush=True)
    try:
        await worker.run(stop)
    finally:
        await runtime.aclose()
        await database.dispose()
    print(f"Clarion worker {worker.owner} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
