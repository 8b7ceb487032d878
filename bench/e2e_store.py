"""Stores for the end-to-end benchmark: a fresh database, an app, its devices.

The SQLite store is a file in a temporary directory; the PostgreSQL one a
database created for the run on 127.0.0.1:5432 (user `postgres`, see
`POSTGRES_ADMIN_URL`) and dropped afterwards. Devices are bulk-inserted
straight through SQLAlchemy, as `tests/delivery/test_worker_crash.py` does:
registering 100,000 devices through the API would measure the API, not the
send pipeline.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.nginx import Nginx
from clarion.store import apps as app_store
from clarion.store import credentials
from clarion.store.db import Database
from clarion.store.migrate import migrate
from clarion.store.schema import devices
from clarion.store.sealing import Sealer

POSTGRES_ADMIN_URL = os.environ.get(
    "CLARION_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SECRET = b"b" * 32
ADMIN_KEY = "clr_adm_bench-admin-key"
INSERT_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class SeededApp:
    """The app the benchmark sends for: its id and server key."""

    id: str
    server_key: str


async def postgres_reachable() -> bool:
    try:
        await admin("SELECT 1")
    except (OSError, sa.exc.SQLAlchemyError):
        return False
    return True


@asynccontextmanager
async def fresh_store(backend: str, directory: Path) -> AsyncIterator[str]:
    """A migrated, empty store; yields its URL and removes it afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'clarion.db'}"
        await migrate_url(url)
        yield url
        return
    name = f"clarion_bench_{os.getpid()}_{secrets.token_hex(3)}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        await migrate_url(url)
        yield url
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def seed(url: str, nginx: Nginx, count: int) -> SeededApp:
    """An app with an APNs token credential pointing at nginx and `count` granted devices."""
    database = Database(url, pool_size=1)
    now = datetime.now(UTC)
    try:
        async with database.write() as conn:
            app, server, _client = await app_store.create_app(conn, name="Bench", now=now)
            await credentials.put_credential(
                conn,
                Sealer(SECRET),
                app.id,
                "apns",
                _apns_credential(nginx),
                public={},
                expires_at=None,
                now=now,
            )
        for start in range(0, count, INSERT_CHUNK):
            rows = [
                _device(app.id, index, now)
                for index in range(start, min(count, start + INSERT_CHUNK))
            ]
            async with database.write() as conn:
                await conn.execute(devices.insert(), rows)
        async with database.write() as conn:
            # A store in use has statistics; a bulk-loaded one has none until autovacuum
            # gets to it, and the query planner would pick scans meant for empty tables.
            await conn.execute(sa.text("ANALYZE"))
    finally:
        await database.dispose()
    return SeededApp(app.id, server.key)


async def backend_pids(url: str) -> list[int]:
    """PostgreSQL server processes serving this database now (for their CPU time)."""
    if url.startswith("sqlite"):
        return []
    database = Database(url, pool_size=1)
    try:
        async with database.read() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return [int(row[0]) for row in rows]
    finally:
        await database.dispose()


def _apns_credential(nginx: Nginx) -> dict[str, Any]:
    """nginx checks no JWT, so any P-256 key signs them."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "auth": "token",
        "key_id": "BENCHKEY01",
        "team_id": "BENCHTEAM1",
        "private_key": pem,
        "bundle_id": "com.example.bench",
        "environment": "production",
        "endpoint": nginx.url,
    }


def _device(app_id: str, index: int, now: datetime) -> dict[str, Any]:
    token = f"beef{index:060x}"  # never the 410 marker: every push is a 200
    return {
        "id": f"dev_{index:026d}",
        "app_id": app_id,
        "platform": "apns",
        "token": token,
        "token_hash": hashlib.sha256(token.encode()).hexdigest(),
        "tags": {},
        "consent": "granted",
        "active": True,
        "created_at": now,
        "updated_at": now,
        "last_seen": now,
    }


async def admin(statement: str) -> None:
    """Run one statement as the PostgreSQL admin, outside a transaction (CREATE/DROP DATABASE)."""
    database = Database(POSTGRES_ADMIN_URL, pool_size=1)
    try:
        async with database.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(statement))
    finally:
        await database.dispose()


async def migrate_url(url: str) -> None:
    """Bring the store at `url` to the latest schema."""
    database = Database(url, pool_size=1)
    try:
        await migrate(database)
    finally:
        await database.dispose()
