"""Helpers for the UniFi tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from agent.clock import Clock
from agent.locks.base import DriverContext, LockCode
from agent.locks.unifi.config import UnifiConfig
from agent.locks.unifi.integration import Timings, UnifiIntegration
from sync_protocol.models import CodeKind, Event

FAST = Timings(
    heartbeat_timeout_s=1.0,
    reconnect_initial_s=0.05,
    reconnect_max_s=0.2,
    needs_user_retry_s=0.5,
    door_refresh_s=5.0,
    settle_s=0.01,
    setup_poll_s=0.05,
)
WAIT_S = 15.0  # generous: a condition that never comes fails the test, a slow one does not


async def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll until predicate() holds; fail with `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Recorder:
    """An EventSink that keeps what it gets."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: str) -> list[Event]:
        """Events of one type."""
        return [e for e in self.events if e.type == kind]


def integration(
    state_dir: Path,
    token: str | None,
    recorder: Recorder,
    *,
    clock: Clock | None = None,
    timings: Timings = FAST,
    **config: object,
) -> UnifiIntegration:
    """An integration as the daemon builds it."""
    ctx = DriverContext(state_dir=state_dir, clock=clock or Clock(), emit=recorder)
    return UnifiIntegration(UnifiConfig(token=token, **config), ctx, timings=timings)  # type: ignore[arg-type]


def code(
    code_id: str,
    pin: str,
    *,
    starts_in_s: float = -3600,
    lasts_s: float = 3 * 86400,
    label: str = "Ada Lovelace",
    booking_id: str | None = None,
    now: float | None = None,
) -> LockCode:
    """A guest code valid around now."""
    base = time.time() if now is None else now
    return LockCode(
        code_id=code_id,
        kind=CodeKind.GUEST,
        pin=pin,
        starts_at=base + starts_in_s,
        ends_at=base + starts_in_s + lasts_s,
        label=label,
        booking_id=booking_id or f"b-{code_id}",
    )
