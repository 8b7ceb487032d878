"""A short memory of who a key is and which app a URL names.

Every request authenticates its key and most load their app: two read
transactions before any work, which for a device registration cost more
than the registration itself. Both answers rarely change, so a process keeps
them for `ttl` seconds. A change made through this process (a key revoked,
an app edited: `clarion.store.apps.changes()` moves) forgets everything at
once; a change made by another process (a second API process, the CLI) is
seen within `ttl` at most. Misses (an unknown key) are never remembered, so a
key created anywhere works at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
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

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.generation != app_store.changes() or entry.expires <= self.monotonic():
            del self._entries[key]
            return None
        return entry.value

    def generation(self) -> int:
        """Read before the lookup whose answer is `put`: a change meanwhile voids it."""
        return app_store.changes()

    def put(self, key: Hashable, value: V, generation: int) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = _Entry(value, self.monotonic() + self.ttl, generation)
