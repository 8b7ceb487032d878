"""When to try a failed push again: exponential backoff with full jitter.

Full jitter (a random delay between 0 and the exponential bound) spreads the
retries of a batch that failed together, so a recovering service is not hit
by all of them at once. A service's `Retry-After` is a floor, never shortened.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

BASE_DELAY = 2.0
MAX_DELAY = 15 * 60.0
MAX_ATTEMPTS = 10


def backoff_bound(attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """The largest delay before retry number `attempt` (1 for the first retry)."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))


def retry_at(
    *,
    attempt: int,
    now: datetime,
    expires_at: datetime,
    retry_after: float | None = None,
    rng: random.Random | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> datetime | None:
    """When to try again, or None when the push should be given up (attempts or ttl)."""
    if attempt >= max_attempts:
        return None
    jittered = (rng or random).uniform(0, backoff_bound(attempt))
    delay = max(jittered, retry_after or 0.0)
    moment = now + timedelta(seconds=delay)
    return moment if moment < expires_at else None
