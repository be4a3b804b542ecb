"""The outbox table: events waiting until the cloud confirmed it stored them.

A row is written before anything is sent. It is *sent* once the broker acknowledged the publish
(PUBACK), and deleted only when the cloud's signed acknowledgement names its event id: a broker
that restarts can lose what it acknowledged (Mosquitto 2.0 does not restore shared subscriptions
from its persistence file), so the broker's PUBACK alone is not proof of delivery. A sent row
that the cloud has not confirmed is sent again after a back-off that grows per row. After a crash
every unconfirmed row is sent again; the cloud stores each event id once.

Sequence numbers are handed out here, not by SQLite: they only grow within a process, so the
"sent up to" mark stays valid even when confirmed rows at the end were deleted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

FIRST_RESEND_S = 5.0  # a confirmation normally comes back within milliseconds
MAX_RESEND_S = 600.0  # while the cloud is away, each row is re-sent at most every 10 minutes
TRIM_SLACK = 0.01  # when full, drop 1% more than needed, so a full outbox does not trim per event
DELETE_CHUNK = 500  # SQLite's bound on host parameters is far above this


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event to queue: its id, type, whether it matters for security, and its JSON body."""

    event_id: str
    type: str
    security: bool
    body: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One queued event (its JSON body) and its place in the queue."""

    seq: int
    event_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """Events the outbox cap removed in one trim."""

    routine: int  # non-security events, dropped first
    security: int  # security events, dropped only when nothing else was left


@dataclass(slots=True)
class _InFlight:
    seq: int
    due: float  # when to send it again if no confirmation came
    backoff: float


class OutboxQueue:
    """Queue operations on the store's connection (call only from the store thread)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        transaction: Callable[[], AbstractContextManager[None]],
        cap: int,
    ) -> None:
        self._db = db
        self._tx = transaction
        self.cap = cap
        row = db.execute("SELECT count(*), coalesce(max(seq), 0) FROM outbox").fetchone()
        self._rows = int(row[0])  # rows in the table, confirmed-but-not-deleted included
        self._next_seq = int(row[1]) + 1
        self._sent_upto = 0  # rows up to here were handed to the broker by this process
        self._in_flight: dict[str, _InFlight] = {}
        self._confirmed: set[int] = set()  # deleted with the next write

    @property
    def depth(self) -> int:
        """Events the cloud has not confirmed yet."""
        return self._rows - len(self._confirmed)

    @property
    def in_flight(self) -> int:
        """Events sent and not yet confirmed."""
        return len(self._in_flight)

    def enqueue(self, events: Sequence[QueuedEvent]) -> Dropped | None:
        """Queue events durably in one transaction; trim to the cap and say what was dropped.

        The same transaction deletes the events confirmed since the last write, so a door that
        is online costs one SD-card commit per event.
        """
        with self._tx():
            self._delete_confirmed()
            first = self._next_seq
            self._db.executemany(
                "INSERT INTO outbox (seq, event_id, type, security, body) VALUES (?, ?, ?, ?, ?)",
                [
                    (first + i, e.event_id, e.type, int(e.security), e.body)
                    for i, e in enumerate(events)
                ],
            )
            self._next_seq += len(events)
            self._rows += len(events)
            return self._trim() if self._rows > self.cap else None

    def _trim(self) -> Dropped:
        excess = self._rows - self.cap + max(1, int(self.cap * TRIM_SLACK))
        counts = [0, 0]
        for security in (0, 1):  # routine events go first; security events only if nothing else
            doomed = [
                (int(r[0]), str(r[1]))
                for r in self._db.execute(
                    "SELECT seq, event_id FROM outbox WHERE security = ? ORDER BY seq LIMIT ?",
                    (security, excess),
                )
            ]
            self._delete([seq for seq, _ in doomed])
            for _, event_id in doomed:
                self._in_flight.pop(event_id, None)
            counts[security] = len(doomed)
            excess -= len(doomed)
            if excess <= 0:
                break
        return Dropped(routine=counts[0], security=counts[1])

    def _delete(self, seqs: Iterable[int]) -> None:
        ordered = sorted(seqs)
        for start in range(0, len(ordered), DELETE_CHUNK):
            chunk = ordered[start : start + DELETE_CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor = self._db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)  # noqa: S608
            self._rows -= cursor.rowcount

    def _delete_confirmed(self) -> None:
        if self._confirmed:
            gone, self._confirmed = self._confirmed, set()
            self._delete(gone)

    def next_unsent(self, limit: int) -> list[OutboxRow]:
        """The oldest events this process has not sent yet, in order."""
        rows = self._db.execute(
            "SELECT seq, event_id, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (self._sent_upto, limit),
        )
        return [OutboxRow(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def due_again(self, now: float, limit: int) -> list[OutboxRow]:
        """Sent events whose confirmation is overdue, to be sent again."""
        due = sorted(f.seq for f in self._in_flight.values() if f.due <= now)[:limit]
        if not due:
            return []
        marks = ",".join("?" * len(due))
        rows = self._db.execute(
            f"SELECT seq, event_id, body FROM outbox WHERE seq IN ({marks}) ORDER BY seq",  # noqa: S608
            due,
        )
        return [OutboxRow(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def next_due(self) -> float | None:
        """When the next overdue confirmation falls due."""
        return min((f.due for f in self._in_flight.values()), default=None)

    def sent(self, rows: Sequence[OutboxRow], now: float) -> None:
        """The broker took these rows (PUBACK); wait for the cloud's confirmation."""
        for row in rows:
            flight = self._in_flight.get(row.event_id)
            backoff = min(flight.backoff * 2, MAX_RESEND_S) if flight else FIRST_RESEND_S
            self._in_flight[row.event_id] = _InFlight(row.seq, now + backoff, backoff)
            self._sent_upto = max(self._sent_upto, row.seq)

    def confirmed(self, event_ids: Iterable[str]) -> int:
        """The cloud stored these events: forget them (deleted with the next write)."""
        count = 0
        for event_id in event_ids:
            flight = self._in_flight.pop(event_id, None)
            if flight is not None and flight.seq not in self._confirmed:
                self._confirmed.add(flight.seq)
                count += 1
        return count

    def flush(self) -> None:
        """Delete confirmed events now."""
        if self._confirmed:
            with self._tx():
                self._delete_confirmed()

    def rows(self, limit: int) -> list[OutboxRow]:
        """Unconfirmed events, oldest first (for inspection)."""
        rows = self._db.execute(
            "SELECT seq, event_id, body FROM outbox ORDER BY seq LIMIT ?",
            (limit + len(self._confirmed),),
        )
        found = [OutboxRow(int(r[0]), str(r[1]), str(r[2])) for r in rows]
        return [r for r in found if r.seq not in self._confirmed][:limit]
