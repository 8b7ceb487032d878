"""Sending a batch of pushes through one provider: in one go where it can, else a small pool.

Why: the sender hands a provider up to a send job's worth of pushes (500)
at once. One asyncio task per push, each queueing on a semaphore, cost more
CPU than the push itself on the wire; a provider with `send_batch` (APNs over
`CurlTransport`) renders the batch and gives it to the transport in one
call, and any other provider is driven by at most `POOL_WIDTH` coroutines
that take pushes in turn.

Outcomes come back in the order of the pushes. A provider that raises for
one push (a bug) gets that push retried (`Retry("provider_error: ...")`),
never the batch lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Protocol, runtime_checkable

from clarion.model.message import Message, Recipient
from clarion.model.outcome import Outcome, Retry
from clarion.providers.base import Provider

POOL_WIDTH = 64
"""Pushes one batch keeps in flight through a provider without `send_batch`."""

Push = tuple[Message, Recipient]
SendOne = Callable[[Message, Recipient], Awaitable[Outcome]]


@runtime_checkable
class BatchProvider(Protocol):
    """A provider that sends a whole batch itself (see `ApnsProvider.send_batch`)."""

    async def send_batch(self, pushes: Sequence[Push]) -> list[Outcome]: ...


def provider_error(exc: BaseException) -> Outcome:
    return Retry(f"provider_error: {type(exc).__name__}")


async def send_pooled(
    send: SendOne,
    pushes: Sequence[Push],
    *,
    width: int = POOL_WIDTH,
    limit: asyncio.Semaphore | None = None,
) -> list[Outcome]:
    """`send` each push with at most `width` in flight; `limit` is held by each consumer."""
    outcomes: list[Outcome | None] = [None] * len(pushes)
    pending = iter(range(len(pushes)))

    async def consume() -> None:
        gate: AbstractAsyncContextManager[object] = limit if limit is not None else nullcontext()
        async with gate:
            for index in pending:
                message, recipient = pushes[index]
                try:
                    outcomes[index] = await send(message, recipient)
                except Exception as exc:  # a provider bug must not lose the batch
                    outcomes[index] = provider_error(exc)

    consumers = min(width, len(pushes))
    if consumers == 1:
        await consume()
    elif consumers:
        await asyncio.gather(*(consume() for _ in range(consumers)))
    return [outcome or Retry("provider_error: no outcome") for outcome in outcomes]


async def send_all(
    provider: Provider, pushes: Sequence[Push], *, limit: asyncio.Semaphore | None = None
) -> list[Outcome]:
    """Every push through `provider`, outcomes in order; `send_batch` when it has one."""
    if isinstance(provider, BatchProvider):
        try:
            return await provider.send_batch(pushes)
        except Exception as exc:  # a provider bug must not lose the batch
            return [provider_error(exc)] * len(pushes)
    return await send_pooled(provider.send, pushes, limit=limit)
