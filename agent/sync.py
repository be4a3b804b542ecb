"""The MQTT side of the agent: presence, desired-state apply, commands, outbox drain, reports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agent.access import AccessState, pin_mac
from agent.clock import Clock
from agent.identity import Identity
from agent.outbox import Outbox, new_event
from agent.store import AsyncStore, StoredCode, StoredLock
from sync_protocol.aio import wait_event
from sync_protocol.codec import decode_ack, decode_desired, encode
from sync_protocol.errors import ProtocolError
from sync_protocol.models import (
    DesiredState,
    Event,
    EventBatch,
    EventType,
    Rejection,
    ReportedState,
)
from sync_protocol.mqtt import (
    Backoff,
    Message,
    MqttError,
    MqttSession,
    PublishRefused,
    Will,
    keep_connected,
)
from sync_protocol.sealing import unseal_pin
from sync_protocol.topics import Channel, topic

log = logging.getLogger(__name__)

OUTBOX_BATCH = 100  # events per MQTT message; ~50 KB, well inside the events size limit
WINDOW = 5000  # events sent but not yet confirmed by the cloud, at most (50 messages)
ACK_FLUSH_S = 60.0  # confirmed events left in the database are deleted after this idle time
REFUSED_RETRY_S = 30.0  # the broker refused our events (ACL?): retry slowly, keep them
REPORT_DEBOUNCE_S = 0.05  # coalesce bursts of changes into one reported state


@dataclass
class SyncStatus:
    """What the sync side knows, for reported state, health and `kasify-agent status`."""

    applied_version: int = 0
    applied_digest: str | None = None
    connected: bool = False
    last_rejection: Rejection | None = None
    sessions: int = 0
    last_attempt: float = 0.0  # monotonic time of the last connection attempt
    last_connect_error: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def prepare_codes(state: DesiredState, identity: Identity) -> list[StoredCode]:
    """Unseal every PIN once to compute its MAC; raises ProtocolError if any PIN is unusable.

    The clear PIN is dropped at once; the sealed form is kept for programming locks that check
    codes themselves.
    """
    prepared = []
    for code in state.codes:
        pin = unseal_pin(code.pin, code.id, identity.seal_key)
        prepared.append(
            StoredCode(
                id=code.id,
                kind=code.kind.value,
                pin_mac=pin_mac(identity.pin_key, pin),
                starts_at=code.starts_at.timestamp() if code.starts_at else None,
                ends_at=code.ends_at.timestamp() if code.ends_at else None,
                lock_ids=code.lock_ids,
                booking_id=code.booking_id,
                task_id=code.task_id,
                label=code.label,
                pin_sealed=code.pin,
            )
        )
    return prepared


Hook = Callable[[], Awaitable[None]]
CommandHandler = Callable[[MqttSession, Message], Awaitable[None]]


async def _nothing() -> None:
    """A hook that does nothing."""


class Sync:
    """Keeps an MQTT session to the broker for as long as the agent runs."""

    def __init__(
        self,
        identity: Identity,
        store: AsyncStore,
        access: AccessState,
        outbox: Outbox,
        clock: Clock,
        build_reported: Callable[[], Awaitable[ReportedState]],
        *,
        on_applied: Hook = _nothing,
        on_command: CommandHandler | None = None,
        keepalive_s: int = 30,
        reported_interval_s: float = 300.0,
    ) -> None:
        self.identity = identity
        self.store = store
        self.access = access
        self.outbox = outbox
        self.clock = clock
        self.build_reported = build_reported
        self.on_applied = on_applied
        self.on_command = on_command
        self.keepalive_s = keepalive_s
        self.reported_interval_s = reported_interval_s
        self.status = SyncStatus()
        self.backoff = Backoff()

    def topic(self, channel: Channel) -> str:
        """One of our own topics."""
        return topic(self.identity.gateway_id, channel)

    async def run(self) -> None:
        """Connect, serve the session, reconnect with jittered backoff; forever."""
        await keep_connected(self._session, what="broker session", backoff=self.backoff)

    async def _session(self) -> None:
        ident = self.identity
        self.status.last_attempt = time.monotonic()
        session = MqttSession(
            client_id=ident.gateway_id,
            host=ident.broker_host,
            port=ident.broker_port,
            tls=ident.tls.context(),
            will=Will(self.topic(Channel.PRESENCE), b"offline"),
            keepalive_s=self.keepalive_s,
        )
        try:
            await session.connect()
        except MqttError as exc:
            self.status.last_connect_error = str(exc)
            raise
        try:
            self.status.connected = True
            self.status.sessions += 1
            self.status.last_connect_error = None
            log.info("connected to %s:%d", ident.broker_host, ident.broker_port)
            await session.publish(self.topic(Channel.PRESENCE), b"online", retain=True)
            filters = [self.topic(Channel.DESIRED), self.topic(Channel.ACK)]
            if self.on_command is not None:
                filters.append(self.topic(Channel.CMD))
            await session.subscribe(*filters)
            self.status.changed.set()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._receive(session))
                tasks.create_task(self._drain(session))
                tasks.create_task(self._report(session))
                closed = tasks.create_task(session.wait_closed())
                await closed
                raise MqttError(f"connection closed: {closed.result()}")
        except* MqttError as group:
            raise group.exceptions[0] from None
        finally:
            self.status.connected = False
            await session.disconnect()

    # --- desired state and commands ----------------------------------------------------------

    async def _receive(self, session: MqttSession) -> None:
        async for message in session.messages():
            if message.topic == self.topic(Channel.DESIRED):
                # A retained document may be old; one forwarded live was just signed.
                await self.on_desired(message.payload, fresh=not message.retain)
            elif message.topic == self.topic(Channel.ACK):
                await self.on_ack(message.payload)
            elif message.topic == self.topic(Channel.CMD) and self.on_command is not None:
                await self.on_command(session, message)
            else:
                log.warning("ignoring a message on unexpected topic %s", message.topic)

    async def on_desired(self, payload: bytes, *, fresh: bool = False) -> bool:
        """Verify and apply a desired document; return whether it was applied."""
        st = self.status
        try:
            verified = decode_desired(
                payload,
                self.identity.verify_keys,
                gateway_id=self.identity.gateway_id,
                applied_version=st.applied_version,
                applied_digest=st.applied_digest,
            )
        except ProtocolError as exc:
            await self._reject(exc, None)
            return False
        if verified.duplicate:
            log.debug("desired version %d is already applied", verified.state.version)
            return False
        state = verified.state
        try:
            codes = await self.store.call(prepare_codes, state, self.identity)
        except ProtocolError as exc:
            await self._reject(exc, state.version)
            return False
        locks = [
            StoredLock(x.id, x.kind.value, x.ref, x.name, dict(x.settings)) for x in state.locks
        ]
        await self.store.call(
            lambda: self.store.sync.apply_desired(
                version=state.version,
                digest=verified.digest,
                property_id=state.property_id,
                timezone=state.timezone,
                locks=locks,
                codes=codes,
            )
        )
        self.access.replace(locks, codes)
        st.applied_version, st.applied_digest = state.version, verified.digest
        self.clock.observe_cloud(state.issued_at, fresh=fresh)
        log.info(
            "applied desired version %d: %d locks, %d codes", state.version, len(locks), len(codes)
        )
        await self.outbox.add(
            new_event(
                EventType.DESIRED_APPLIED,
                self.clock,
                result="applied",
                details={"version": state.version, "codes": len(codes), "locks": len(locks)},
            )
        )
        await self.on_applied()
        st.changed.set()
        return True

    async def _reject(self, exc: ProtocolError, version: int | None) -> None:
        log.error("refused desired state: %s", exc)
        self.status.last_rejection = Rejection(
            reason=exc.reason.value,
            detail=exc.detail[:200],
            version=version,
            at=Clock.utc(self.clock.now()),
        )
        await self.outbox.add(
            new_event(
                EventType.DESIRED_REJECTED,
                self.clock,
                result=exc.reason.value,
                details={"detail": exc.detail[:200], "version": version},
            )
        )
        self.status.changed.set()

    # --- outbox ------------------------------------------------------------------------------

    async def _drain(self, session: MqttSession) -> None:
        store = self.store
        queue = store.sync.outbox
        while True:
            self.outbox.wake.clear()
            now = time.monotonic()
            rows = await store.call(queue.due_again, now, OUTBOX_BATCH)
            if not rows and queue.in_flight < WINDOW:
                rows = await store.call(queue.next_unsent, OUTBOX_BATCH)
            if not rows:
                due = await store.call(queue.next_due)
                timeout = ACK_FLUSH_S if due is None else min(ACK_FLUSH_S, max(0.05, due - now))
                try:
                    await asyncio.wait_for(self.outbox.wake.wait(), timeout)
                except TimeoutError:
                    await store.call(queue.flush)
                continue
            events: list[Event] = []
            for row in rows:
                try:
                    events.append(Event.model_validate_json(row.body))
                except ValueError as exc:  # a damaged row must not block the queue forever
                    log.error(
                        "unreadable outbox row %d (%s), skipped: %s", row.seq, row.event_id, exc
                    )
            if events:
                batch = EventBatch(gateway_id=self.identity.gateway_id, events=tuple(events))
                try:
                    await session.publish(self.topic(Channel.EVENTS), encode(batch))
                except PublishRefused as exc:
                    log.error("broker refused %d events, keeping them: %s", len(events), exc)
                    await asyncio.sleep(REFUSED_RETRY_S)
                    continue
            await store.call(queue.sent, rows, time.monotonic())

    async def on_ack(self, payload: bytes) -> None:
        """The cloud confirmed stored events: they may leave the outbox."""
        try:
            ack = decode_ack(
                payload, self.identity.verify_keys, gateway_id=self.identity.gateway_id
            )
        except ProtocolError as exc:
            log.warning("ignored an event acknowledgement: %s", exc)
            return
        queue = self.store.sync.outbox
        await self.store.call(queue.confirmed, ack.event_ids)
        self.outbox.wake.set()  # room in the window
        if queue.depth == 0:
            self.status.changed.set()  # report the empty outbox

    # --- reported state ----------------------------------------------------------------------

    async def _report(self, session: MqttSession) -> None:
        while True:
            await wait_event(self.status.changed, self.reported_interval_s)
            await asyncio.sleep(REPORT_DEBOUNCE_S)
            self.status.changed.clear()
            reported = await self.build_reported()
            await session.publish(self.topic(Channel.REPORTED), encode(reported), retain=True)
