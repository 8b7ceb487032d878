"""The short memory of keys and apps: expiry, changes and shared lookups."""

from __future__ import annotations

import asyncio

import pytest

from clarion.api.lookups import TtlCache
from clarion.clock import FakeClock
from clarion.store import apps as app_store


class Lookups:
    """A lookup that counts its calls and waits until released."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> str | None:
        self.calls += 1
        await self.release.wait()
        return self.answer


async def test_concurrent_misses_share_one_lookup() -> None:
    cache: TtlCache[str] = TtlCache(FakeClock().monotonic)
    lookup = Lookups("alice")
    waiting = [asyncio.create_task(cache.get_or_load("k", lookup)) for _ in range(20)]
    await asyncio.sleep(0)
    lookup.release.set()
    assert await asyncio.gather(*waiting) == ["alice"] * 20
    assert lookup.calls == 1


async def test_value_expires_after_the_ttl() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(clock.monotonic, ttl=1.0)
    lookup = Lookups("alice")
    lookup.release.set()
    await cache.get_or_load("k", lookup)
    clock.advance(0.5)
    await cache.get_or_load("k", lookup)
    assert lookup.calls == 1
    clock.advance(0.5)
    await cache.get_or_load("k", lookup)
    assert lookup.calls == 2


async def test_a_change_in_this_process_forgets_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    cache: TtlCache[str] = TtlCache(FakeClock().monotonic)
    lookup = Lookups("alice")
    lookup.release.set()
    await cache.get_or_load("k", lookup)
    monkeypatch.setattr(app_store, "changes", lambda: 1_000_000)
    lookup.answer = None  # revoked
    assert await cache.get_or_load("k", lookup) is None
    assert lookup.calls == 2


async def test_a_lookup_begun_before_a_change_is_not_shared_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache: TtlCache[str] = TtlCache(FakeClock().monotonic)
    before = Lookups("alice")
    early = asyncio.create_task(cache.get_or_load("k", before))
    await asyncio.sleep(0)
    monkeypatch.setattr(app_store, "changes", lambda: 1_000_000)
    after = Lookups(None)
    after.release.set()
    assert await cache.get_or_load("k", after) is None
    before.release.set()
    assert await early == "alice"
    assert await cache.get_or_load("k", after) is None  # the early answer was not kept


async def test_unknown_keys_are_not_remembered() -> None:
    cache: TtlCache[str] = TtlCache(FakeClock().monotonic)
    lookup = Lookups(None)
    lookup.release.set()
    assert await cache.get_or_load("k", lookup) is None
    assert await cache.get_or_load("k", lookup) is None
    assert lookup.calls == 2
