"""Every door event captured: log entries from the WebSocket and from system-log catch-ups.

Both paths end in `LogFollower.handle`, which places the entry at a door, maps the visitor back
to our code, records the entry's id before anything is awaited (so the two paths can never both
emit it) and emits the event. The ids and the newest entry's time are persisted with the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from agent.locks.base import DriverContext
from agent.locks.unifi.client import UnifiClient
from agent.locks.unifi.errors import UnifiError
from agent.locks.unifi.events import CodeRef, DoorResolver, entry_event
from agent.locks.unifi.models import LogEntry
from agent.locks.unifi.state import UnifiState

log = logging.getLogger(__name__)

CATCHUP_OVERLAP_S: Final = 300.0  # re-read this much before the newest entry: skew, late writes
DEVICE_LOOKUP_MIN_S: Final = 60.0  # an entry we cannot place re-reads /devices at most this often
LOG_TOPIC: Final = "door_openings"


class LogFollower:
    """Turns the controller's log entries into agent events, each exactly once."""

    def __init__(
        self,
        ctx: DriverContext,
        state: UnifiState,
        controller: str,
        resolver: DoorResolver,
        lock_of_door: Callable[[str | None], str | None],
    ) -> None:
        self.ctx = ctx
        self.state = state
        self.controller = controller  # the pinned fingerprint: part of every event id
        self.resolver = resolver
        self._lock_of_door = lock_of_door
        self._last_device_lookup = -DEVICE_LOOKUP_MIN_S
        if state.log_cursor is None:  # first start: history before now is not ours to report
            state.log_cursor = ctx.clock.now()
            state.changed()

    async def learn_devices(self, client: UnifiClient) -> None:
        """Read which door each hub serves (optional: older consoles or scopes may refuse)."""
        self._last_device_lookup = asyncio.get_running_loop().time()
        try:
            self.resolver.learn_devices(await client.devices())
        except UnifiError as exc:
            log.info("UniFi: cannot read devices to place hub ids (%s)", exc)

    async def catch_up(self, client: UnifiClient) -> int:
        """Handle every door-opening entry since the newest one handled; return how many."""
        cursor = self.state.log_cursor
        since = int((cursor if cursor is not None else self.ctx.clock.now()) - CATCHUP_OVERLAP_S)
        entries = await client.all_system_logs(topic=LOG_TOPIC, since=since)
        handled = 0
        for entry in entries:
            handled += await self.handle(entry, client)
        self.state.changed()
        return handled

    async def handle(self, entry: LogEntry, client: UnifiClient | None) -> bool:
        """Emit the event for one entry unless it was handled already; True if it was new."""
        state = self.state
        if state.is_seen(entry.id):
            return False
        door_id = self.resolver.resolve(entry)
        loop = asyncio.get_running_loop()
        if (
            door_id is None
            and client is not None
            and loop.time() - self._last_device_lookup >= DEVICE_LOOKUP_MIN_S
        ):
            with contextlib.suppress(UnifiError):
                await self.learn_devices(client)
            door_id = self.resolver.resolve(entry)
        if not state.mark_seen(entry.id, entry.at):
            return False  # the other path handled it meanwhile
        state.changed()
        lock_id = self._lock_of_door(door_id)
        if lock_id is None:
            return True  # a door we do not drive
        found = state.code_of_visitor(entry.actor_id) if entry.actor_id else None
        event = entry_event(
            entry,
            controller=self.controller,
            lock_id=lock_id,
            code=CodeRef(*found) if found else None,
            clock=self.ctx.clock,
        )
        if event is None:
            return True
        try:
            await self.ctx.emit(event)
        except BaseException:
            state.unmark(entry.id)  # not recorded: the next catch-up tries again
            raise
        return True
