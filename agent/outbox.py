"""Events the agent records: written durably to the SQLite outbox, drained to the broker.

Writes are combined: whatever events arrive while a commit is running go into the next
transaction together, so a burst costs one fsync instead of one per event, and a lone event is
committed at once. `add()` returns only when its event is durable.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from agent.clock import Clock
from agent.outbox_queue import Dropped, QueuedEvent
from agent.store import AsyncStore
from sync_protocol.ids import uuid7
from sync_protocol.models import Event, EventType, Method, Scalar

log = logging.getLogger(__name__)

# Events that matter for the safety of the property; when the outbox is full, every other
# event is dropped before any of these.
SECURITY_EVENTS = frozenset(
    {
        EventType.ACCESS_GRANTED,
        EventType.ACCESS_DENIED,
        EventType.KEYPAD_LOCKOUT,
        EventType.TAMPER,
        EventType.UNLOCKED,
        EventType.LOCKED,
        EventType.LOCK_JAMMED,
        EventType.BATTERY_LOW,
        EventType.CLOCK_UNTRUSTED,
        EventType.STORE_RECOVERED,
        EventType.DESIRED_REJECTED,
        EventType.COMMAND_REJECTED,
        EventType.EVENTS_DROPPED,
    }
)
MAX_BATCH = 500  # events per transaction when a burst is waiting


def new_event(
    event_type: EventType,
    clock: Clock,
    *,
    lock_id: str | None = None,
    code_id: str | None = None,
    booking_id: str | None = None,
    task_id: str | None = None,
    method: Method | None = None,
    result: str | None = None,
    details: dict[str, Scalar] | None = None,
) -> Event:
    """An event stamped with a fresh UUIDv7 and the clock's time and trust."""
    now = clock.now()
    return Event(
        id=uuid7(int(now * 1000)),
        type=event_type.value,
        occurred_at=Clock.utc(now),
        clock_trusted=clock.trusted,
        lock_id=lock_id,
        code_id=code_id,
        booking_id=booking_id,
        task_id=task_id,
        method=method,
        result=result,
        details=details or {},
    )


def queued(event: Event) -> QueuedEvent:
    """The outbox row of an event."""
    return QueuedEvent(event.id, event.type, event.type in SECURITY_EVENTS, event.model_dump_json())


@dataclass
class _Pending:
    event: Event
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Outbox:
    """Queue events durably and wake the drain."""

    def __init__(self, store: AsyncStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.wake = asyncio.Event()
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, event: Event) -> None:
        """Persist an event; return once it is durable. It leaves only after the broker's PUBACK."""
        item = _Pending(event)
        self._pending.append(item)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="outbox-writer")
        await item.done
        log.debug("durable event %s %s %s", event.id, event.type, event.result or "")

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                dropped = await self._store.call(
                    self._store.sync.outbox.enqueue, [queued(p.event) for p in batch]
                )
            except Exception as exc:
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            for item in batch:
                if not item.done.done():
                    item.done.set_result(None)
            if dropped is not None:
                await self._report_dropped(dropped)
            self.wake.set()

    async def _report_dropped(self, dropped: Dropped) -> None:
        log.warning(
            "outbox full (%d events): dropped the %d oldest routine and %d security events",
            self._store.sync.outbox.cap,
            dropped.routine,
            dropped.security,
        )
        notice = new_event(
            EventType.EVENTS_DROPPED,
            self._clock,
            result="dropped",
            details={"routine": dropped.routine, "security": dropped.security},
        )
        await self._store.call(self._store.sync.outbox.enqueue, [queued(notice)])
