"""A wait for an asyncio.Event with a timeout that never loses a cancellation.

On Python 3.11, `asyncio.timeout()` or `asyncio.wait_for()` wrapped in
`contextlib.suppress(TimeoutError)` can swallow a `cancel()` that arrives while the timeout fires:
the worker task then never stops and whoever awaits it hangs. `asyncio.wait` reports a timeout by
returning, so a cancellation always propagates.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, within_s: float | None) -> bool:
    """Wait until `event` is set or `within_s` seconds passed (None: no limit); is it set?"""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=within_s)
    finally:
        waiter.cancel()
    return event.is_set()
