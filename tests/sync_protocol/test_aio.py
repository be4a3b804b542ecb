"""wait_event: a timed wait for an event that never swallows a cancellation."""

from __future__ import annotations

import asyncio
import random

import pytest

from sync_protocol.aio import wait_event


async def test_it_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True
    assert await wait_event(event, 0) is True  # already set: no wait at all


async def test_a_worker_looping_on_short_waits_always_stops_when_cancelled() -> None:
    # The pattern of every background worker: wait for a wake-up or a deadline, then look
    # again. Cancellations land at random points, many of them as a wait times out.
    rng = random.Random(7)
    for _ in range(200):
        event = asyncio.Event()

        async def worker(wake: asyncio.Event = event) -> None:
            while True:
                await wait_event(wake, 0.0005)

        task = asyncio.create_task(worker())
        await asyncio.sleep(rng.uniform(0, 0.003))
        task.cancel()
        async with asyncio.timeout(1):
            with pytest.raises(asyncio.CancelledError):
                await task
