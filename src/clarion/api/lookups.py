"""A short memory of who a key is and which app a URL names.

Every request authenticates its key and most load their app: two read
transactions before any work, which for a device registration cost more
than the registration itself. Both answers rarely change, so a process keeps
them for `ttl` seconds. A change made through this process (a key revoked,
an app edited: `clarion.store.apps.changes()` moves) forgets everything at
once; a change made by another process (a second API process, the CLI) is
seen within `ttl` at most. Misses (an unknown key) are never remembered, so a
key created anywhere works at once. When an entry expires under load, the
requests that want it share one lookup instead of each starting its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from clarion.store import apps as app_store

V = TypeVar("V")

DEFAULT_TTL = 1.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    expires: float
    generation: int


@dataclass(slots=True)
class TtlCache(Generic[V]):
    """Values by key for `ttl` seconds of `monotonic`, while the store reports no change."""

    monotonic: Callable[[], float]
    ttl: float = DEFAULT_TTL
    _entries: dict[Hashable, _Entry[V]] = field(default_factory=dict)
    _loading: dict[Hashable, tuple[int, asyncio.Task[V | None]]] = field(default_factory=dict)

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The remembered value, else `load()`'s (remembered unless None)."""
        value = self.get(key)
        if value is not None:
            return value
        generation = app_store.changes()
        generation_loading, task = self._loading.get(key, (None, None))
        if task is None or generation_loading != generation:
            # None under way, or one begun before a change: it might answer from before.
            task = asyncio.create_task(self._load(key, load, generation))
            self._loading[key] = (generation, task)
            task.add_done_callback(lambda done: self._forget_load(key, done))
        return await asyncio.shield(task)

    def _forget_load(self, key: Hashable, task: asyncio.Task[V | None]) -> None:
        if self._loading.get(key, (None, None))[1] is task:
            del self._loading[key]

    async def _load(
        self, key: Hashable, load: Callable[[], Awaitable[V | None]], generation: int
    ) -> V | None:
        value = await load()
        if value is not None:
            self.put(key, value, generation)
        return value

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.generation != app_store.changes() or entry.expires <= self.monotonic():
            del self._entries[key]
            return None
        return entry.value

    def put(self, key: Hashable, value: V, generation: int) -> None:
        """Remember `value`, read when `app_store.changes()` was `generation`."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = _Entry(value, self.monotonic() + self.ttl, generation)
