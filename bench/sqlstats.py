"""Wall time per SQL statement of a `Database`, for finding where a run waits on the store.

py-spy sees the SQLite driver thread or asyncpg's socket, not which statement
is running; SQLAlchemy's cursor events do. Times are from the statement
being handed to the driver to its result (queueing for the driver thread
and lock waits included), so they answer "what does a job wait for".
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from clarion.store.db import Database

_WORDS = re.compile(r"\s+")


@dataclass(slots=True)
class Statement:
    count: int = 0
    seconds: float = 0.0
    rows: int = 0


class SqlStats:
    """Collects per-statement counts and times until `detach`."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine.sync_engine
        self.statements: defaultdict[str, Statement] = defaultdict(Statement)
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        sa.event.listen(self.engine, "after_cursor_execute", self._after)

    def detach(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        sa.event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        started = conn.info["bench_started"].pop()
        entry = self.statements[_WORDS.sub(" ", statement)[:90]]
        entry.count += 1
        entry.seconds += time.perf_counter() - started
        entry.rows += len(parameters) if many and isinstance(parameters, list | tuple) else 1

    def report(self, top: int = 12) -> str:
        total = sum(s.seconds for s in self.statements.values()) or 1.0
        ranked = sorted(self.statements.items(), key=lambda item: -item[1].seconds)[:top]
        lines = [f"  SQL wall time {total:.1f}s in {len(self.statements)} statement shapes:"]
        for text, entry in ranked:
            lines.append(
                f"  {entry.seconds / total:6.1%} {entry.seconds:6.2f}s {entry.count:6}x "
                f"{entry.rows:7} rows  {text}"
            )
        return "\n".join(lines)
