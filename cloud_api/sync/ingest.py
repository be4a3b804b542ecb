"""Store what agents publish: events (idempotently, many per transaction), reported state,
presence and command results. Anything malformed is logged and dropped; the ingest goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from cloud_api.db import Database, utcnow
from cloud_api.metrics import Metrics
from cloud_api.models import (
    AccessCode,
    Booking,
    Command,
    CommandState,
    Gateway,
    SmartLock,
)
from cloud_api.services.events import cloud_event, store_events
from cloud_api.sync.link import StoreUnavailable
from cloud_api.sync.reported import apply_reported, chunks
from sync_protocol.codec import (
    decode_command_result,
    decode_events,
    decode_presence,
    decode_reported,
)
from sync_protocol.errors import ProtocolError
from sync_protocol.models import CommandResult, EventBatch, Presence, ReportedState
from sync_protocol.topics import Channel, all_gateways, parse_topic, shared

log = logging.getLogger(__name__)

# Events and command results are split among cloud workers (shared subscriptions). Reported state
# and presence are retained per gateway, and the broker hands retained messages only to plain
# subscriptions: every worker subscribes to them plainly, so a restarted cloud learns them at once.
INGEST_FILTERS = (
    shared(all_gateways(Channel.EVENTS)),
    shared(all_gateways(Channel.CMD_RESULT)),
    all_gateways(Channel.REPORTED),
    all_gateways(Channel.PRESENCE),
)
SHOWN_TOPIC_CHARS = 120
Acks = dict[str, list[str]]  # gateway id -> ids of its events the database now holds
COMMAND_STATES = {"ok": CommandState.OK, "failed": CommandState.FAILED}


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message from the broker."""

    topic: str
    payload: bytes
    correlation_data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Decoded:
    """A message that passed the protocol checks."""

    channel: Channel
    gateway_id: str
    body: EventBatch | ReportedState | Presence | CommandResult
    correlation_data: bytes | None = None


class Ingest:
    """Decodes messages and stores a whole batch of them in one transaction."""

    def __init__(
        self,
        db: Database,
        metrics: Metrics | None = None,
        on_command_result: Callable[[str], None] | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics or Metrics()
        self._on_command_result = on_command_result

    def handle(self, topic_name: str, payload: bytes) -> Acks:
        """Handle one message (blocking: run it in an executor)."""
        return self.handle_batch([Incoming(topic_name, payload)])

    def handle_batch(self, messages: Sequence[Incoming]) -> Acks:
        """Store a batch in one transaction (blocking: run it in an executor).

        Returns, per gateway, the ids of the events now stored (new or already there): the
        agent deletes an event from its outbox only when the cloud confirms it with these.

        Raises StoreUnavailable when the database cannot be reached, so the messages stay
        unacknowledged and the broker delivers them again. If the batch fails for another
        reason, each message is retried alone and one that still fails is logged and dropped, so
        a poisonous message can neither stall the ingest nor take good ones down with it.
        """
        decoded = [d for d in (self._decode(m) for m in messages) if d is not None]
        acks: Acks = {}
        if not decoded:
            return acks
        try:
            done = self._store(decoded, acks)
        except (OperationalError, InterfaceError) as exc:
            raise StoreUnavailable(f"database unavailable: {exc}") from exc
        except Exception:
            acks.clear()
            if len(decoded) == 1:
                log.exception("failed to store %s from gateway %s; dropped", *_what(decoded[0]))
                self._metrics.ingest_messages.labels(decoded[0].channel.value, "failed").inc()
                return acks
            log.exception("failed to store a batch of %d; storing one by one", len(decoded))
            done = []
            for item in decoded:
                try:
                    one: Acks = {}
                    done += self._store([item], one)
                    for gateway_id, ids in one.items():
                        acks.setdefault(gateway_id, []).extend(ids)
                except (OperationalError, InterfaceError) as exc:
                    raise StoreUnavailable(f"database unavailable: {exc}") from exc
                except Exception:
                    log.exception("failed to store %s from gateway %s; dropped", *_what(item))
                    self._metrics.ingest_messages.labels(item.channel.value, "failed").inc()
        if self._on_command_result is not None:
            for command_id in done:
                self._on_command_result(command_id)
        return acks

    # --- decoding --------------------------------------------------------------------------

    def _decode(self, message: Incoming) -> Decoded | None:
        try:
            gateway_id, channel = parse_topic(message.topic)
        except ProtocolError as exc:
            log.warning("dropped a message on %r: %s", message.topic[:SHOWN_TOPIC_CHARS], exc)
            self._metrics.ingest_messages.labels("unknown", "dropped").inc()
            return None
        payload = message.payload
        try:
            body: EventBatch | ReportedState | Presence | CommandResult
            if channel is Channel.EVENTS:
                body = decode_events(payload, gateway_id=gateway_id)
            elif channel is Channel.REPORTED:
                body = decode_reported(payload, gateway_id=gateway_id)
            elif channel is Channel.PRESENCE:
                body = decode_presence(payload)
            elif channel is Channel.CMD_RESULT:
                body = decode_command_result(payload, gateway_id=gateway_id)
            else:
                log.warning("ignored %s from gateway %s: not ingested", channel.value, gateway_id)
                return None
        except ProtocolError as exc:
            log.warning(
                "dropped %s from gateway %s (%d bytes): %s",
                channel.value,
                gateway_id,
                len(payload),
                exc,
            )
            self._metrics.ingest_messages.labels(channel.value, "dropped").inc()
            return None
        return Decoded(channel, gateway_id, body, message.correlation_data)

    # --- storing ---------------------------------------------------------------------------

    def _store(self, items: Sequence[Decoded], acks: Acks) -> list[str]:
        """Store items in order, consecutive event batches as one insert; returns the ids of
        commands that got their result, and fills `acks` once the transaction committed."""
        now = utcnow()
        finished: list[str] = []
        stored = 0
        pending: Acks = {}
        with self._db.session() as session:
            gateways = self._gateways(session, {item.gateway_id for item in items})
            run: list[Decoded] = []
            for item in items:
                if item.channel is Channel.EVENTS:
                    run.append(item)
                    continue
                stored += self._events(session, gateways, run, now, pending)
                run = []
                gateway = self._live(gateways, item)
                if gateway is None:
                    continue
                if isinstance(item.body, ReportedState):
                    apply_reported(session, gateway, item.body, now)
                elif isinstance(item.body, Presence):
                    self._presence(session, gateway, item.body, now)
                elif isinstance(item.body, CommandResult) and self._command_result(
                    session, gateway, item
                ):
                    finished.append(item.body.command_id)
            stored += self._events(session, gateways, run, now, pending)
            session.commit()
        for gateway_id, ids in pending.items():
            acks.setdefault(gateway_id, []).extend(ids)
        for item in items:
            self._metrics.ingest_messages.labels(item.channel.value, "stored").inc()
        self._metrics.ingest_events.inc(stored)
        return finished

    @staticmethod
    def _gateways(session: Session, ids: set[str]) -> dict[str, Gateway]:
        return {g.id: g for g in session.scalars(select(Gateway).where(Gateway.id.in_(ids)))}

    @staticmethod
    def _live(gateways: dict[str, Gateway], item: Decoded) -> Gateway | None:
        gateway = gateways.get(item.gateway_id)
        what = item.channel.value
        if gateway is None or gateway.enrolled_at is None:
            log.warning("dropped %s from unknown gateway %s", what, item.gateway_id)
            return None
        if gateway.deleted_at is not None:
            log.warning("dropped %s from deleted gateway %s", what, item.gateway_id)
            return None
        return gateway

    def _events(
        self,
        session: Session,
        gateways: dict[str, Gateway],
        run: list[Decoded],
        now: datetime,
        acks: Acks,
    ) -> int:
        batches: list[tuple[Gateway, EventBatch]] = []
        for item in run:
            gateway = self._live(gateways, item)
            if gateway is not None and isinstance(item.body, EventBatch):
                batches.append((gateway, item.body))
                acks.setdefault(gateway.id, []).extend(e.id for e in item.body.events)
        if not batches:
            return 0
        events = [event for _, batch in batches for event in batch.events]
        locks = _known(session, SmartLock, {e.lock_id for e in events})
        codes = _codes(session, {e.code_id for e in events})
        bookings = _known(session, Booking, {e.booking_id for e in events})
        rows: dict[str, dict[str, Any]] = {}
        for gateway, batch in batches:
            pid = gateway.property_id
            foreign = 0
            for event in batch.events:
                lock_id = event.lock_id if locks.get(event.lock_id or "") == pid else None
                code = codes.get(event.code_id or "")
                code_ok = code is not None and code[0] == pid
                booking_id = (
                    event.booking_id if bookings.get(event.booking_id or "") == pid else None
                )
                foreign += (
                    (event.lock_id is not None and lock_id is None)
                    + (event.code_id is not None and not code_ok)
                    + (event.booking_id is not None and booking_id is None)
                )
                rows.setdefault(
                    event.id,
                    {
                        "id": event.id,
                        "gateway_id": gateway.id,
                        "property_id": pid,
                        "type": event.type,
                        "occurred_at": event.occurred_at,
                        "received_at": now,
                        "clock_trusted": event.clock_trusted,
                        "lock_id": lock_id,
                        "code_id": event.code_id if code_ok else None,
                        "booking_id": booking_id,
                        # A crew code ties the event to its task (contractors see these).
                        "task_id": event.task_id or (code[1] if code_ok and code else None),
                        "method": event.method.value if event.method is not None else None,
                        "result": event.result,
                        "details": dict(event.details),
                    },
                )
            if foreign:
                log.warning(
                    "gateway %s sent %d lock/code/booking ids that are not of its property %s; "
                    "they were left out of its events",
                    gateway.id,
                    foreign,
                    pid,
                )
        stored = store_events(session, list(rows.values()))
        seen = sorted({gateway.id for gateway, _ in batches})
        session.execute(update(Gateway).where(Gateway.id.in_(seen)).values(last_seen_at=now))
        log.debug("stored %d new of %d events from %d gateways", stored, len(rows), len(seen))
        return stored

    @staticmethod
    def _presence(session: Session, gateway: Gateway, presence: Presence, now: datetime) -> None:
        # Lock the row: every worker gets the retained presence, only one may record the change.
        session.flush()
        session.refresh(gateway, with_for_update=True)
        online = presence is Presence.ONLINE
        gateway.last_seen_at = now
        if gateway.online == online:
            return
        gateway.online = online
        if not online:
            session.execute(
                update(SmartLock).where(SmartLock.gateway_id == gateway.id).values(reachable=False)
            )
        kind = "gateway_online" if online else "gateway_offline"
        event = cloud_event(
            gateway_id=gateway.id, property_id=gateway.property_id, type=kind, at=now
        )
        store_events(session, [event])
        log.info("gateway %s is %s", gateway.id, presence.value)

    @staticmethod
    def _command_result(session: Session, gateway: Gateway, item: Decoded) -> bool:
        result = item.body
        assert isinstance(result, CommandResult)
        if (
            item.correlation_data is not None
            and item.correlation_data != result.command_id.encode()
        ):
            log.warning(
                "dropped a command result from gateway %s: its correlation data does not match "
                "command %s",
                gateway.id,
                result.command_id,
            )
            return False
        command = session.get(Command, result.command_id, with_for_update=True)
        if command is None or command.gateway_id != gateway.id:
            log.warning(
                "dropped a result from gateway %s for unknown command %s",
                gateway.id,
                result.command_id,
            )
            return False
        if command.state is not CommandState.PENDING:
            return False  # redelivered, or it expired first
        command.state = COMMAND_STATES.get(result.status.value, CommandState.REJECTED)
        command.reason = result.reason
        command.detail = result.detail[:200]
        command.finished_at = result.finished_at
        log.info(
            "command %s (%s) on gateway %s: %s %s",
            command.id,
            command.action,
            gateway.id,
            result.status.value,
            result.detail,
        )
        return True


def _what(item: Decoded) -> tuple[str, str]:
    return item.channel.value, item.gateway_id


def _known(
    session: Session, model: type[SmartLock] | type[Booking], ids: set[str | None]
) -> dict[str, str]:
    """id -> property id of the rows that exist."""
    wanted = sorted(i for i in ids if i is not None)
    found: dict[str, str] = {}
    for part in chunks(wanted):
        found.update(
            session.execute(select(model.id, model.property_id).where(model.id.in_(part))).all()
        )
    return found


def _codes(session: Session, ids: set[str | None]) -> dict[str, tuple[str, str | None]]:
    """code id -> (property id, task id) of the codes that exist."""
    wanted = sorted(i for i in ids if i is not None)
    found: dict[str, tuple[str, str | None]] = {}
    for part in chunks(wanted):
        for code_id, pid, task_id in session.execute(
            select(AccessCode.id, AccessCode.property_id, AccessCode.task_id).where(
                AccessCode.id.in_(part)
            )
        ):
            found[code_id] = (pid, task_id)
    return found
