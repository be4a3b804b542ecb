"""Signed remote commands: verify, refuse replays and expired ones, act once, answer correlated."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from agent.clock import Clock
from agent.fleet import LockFleet
from agent.identity import Identity
from agent.locks.base import (
    ActionRefused,
    ActionUnsupported,
    LockAction,
    LockError,
    LockTimeout,
    LockUnreachable,
    NotPaired,
)
from agent.outbox import Outbox, new_event
from agent.store import AsyncStore
from sync_protocol.codec import decode_command, encode
from sync_protocol.errors import ProtocolError, Reason
from sync_protocol.models import (
    Command,
    CommandAction,
    CommandResult,
    CommandStatus,
    EventType,
    Method,
)
from sync_protocol.mqtt import Message, MqttError, MqttSession
from sync_protocol.topics import Channel, topic

log = logging.getLogger(__name__)

ACTION_TIMEOUT_S = 30.0  # a Nuki unlatch takes ~4 s; a sleeping lock needs ~6 s to connect

_REASONS: tuple[tuple[type[LockError], str], ...] = (
    (NotPaired, "not_paired"),
    (ActionUnsupported, "unsupported"),
    (LockTimeout, "timeout"),
    (LockUnreachable, "unreachable"),
    (ActionRefused, "refused"),
)


class CommandRunner:
    """Handles messages on the gateway's `cmd` topic."""

    def __init__(
        self,
        identity: Identity,
        store: AsyncStore,
        fleet: LockFleet,
        clock: Clock,
        outbox: Outbox,
        sync_now: Callable[[], Awaitable[None]],
    ) -> None:
        self.identity = identity
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.outbox = outbox
        self.sync_now = sync_now
        self._running: set[asyncio.Task[None]] = set()

    async def handle(self, session: MqttSession, message: Message) -> None:
        """Verify a command and run it in the background (the receive loop must not wait)."""
        now = self.clock.now()
        try:
            # On the store thread: the replay check reads the database.
            command = await self.store.call(
                lambda: decode_command(
                    message.payload,
                    self.identity.verify_keys,
                    gateway_id=self.identity.gateway_id,
                    now=Clock.utc(now),
                    seen=self.store.sync.command_seen,
                )
            )
            fresh = await self.store.call(
                self.store.sync.remember_command, command.id, command.expires_at.timestamp(), now
            )
            if not fresh:  # another delivery raced the first one past the check
                raise ProtocolError(Reason.REPLAYED, f"command {command.id} was already received")
        except ProtocolError as exc:
            await self._refused(session, message, exc)
            return
        self.clock.observe_cloud(command.issued_at, fresh=True)
        task = asyncio.create_task(self._run(session, message, command))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, session: MqttSession, message: Message, command: Command) -> None:
        status, reason, detail = CommandStatus.OK, None, ""
        if command.action is CommandAction.SYNC_NOW:
            await self.sync_now()
            detail = "reported state refreshed, outbox drained, codes reconciled"
        else:
            status, reason, detail = await self._lock_action(command)
        result = CommandResult(
            command_id=command.id,
            gateway_id=self.identity.gateway_id,
            status=status,
            reason=reason,
            detail=detail[:200],
            finished_at=Clock.utc(self.clock.now()),
        )
        await self._answer(session, message, result)

    async def _lock_action(self, command: Command) -> tuple[CommandStatus, str | None, str]:
        lock_id = command.lock_id or ""
        driver = self.fleet.driver(lock_id)
        action = LockAction(command.action.value)
        if driver is None:
            status, reason, detail = CommandStatus.FAILED, "unknown_lock", f"no lock {lock_id}"
        else:
            try:
                async with asyncio.timeout(ACTION_TIMEOUT_S):
                    outcome = await driver.perform(action)
                status, reason, detail = CommandStatus.OK, None, outcome.detail or outcome.state
            except TimeoutError:
                status, reason = CommandStatus.FAILED, "timeout"
                detail = f"no answer from the lock within {ACTION_TIMEOUT_S:.0f} s"
            except LockError as exc:
                reason = next((r for cls, r in _REASONS if isinstance(exc, cls)), "failed")
                status, detail = CommandStatus.FAILED, str(exc)
        kind = EventType.LOCKED if action is LockAction.LOCK else EventType.UNLOCKED
        await self.outbox.add(
            new_event(
                kind,
                self.clock,
                lock_id=lock_id or None,
                method=Method.REMOTE,
                result="ok" if status is CommandStatus.OK else "failed",
                details={
                    "action": action.value,
                    "command_id": command.id,
                    "requested_by": command.requested_by,
                    "reason": reason,
                    "detail": detail[:200],
                },
            )
        )
        return status, reason, detail

    async def _refused(self, session: MqttSession, message: Message, exc: ProtocolError) -> None:
        log.warning("refused a command: %s", exc)
        command_id = _command_id(message.correlation_data)
        await self.outbox.add(
            new_event(
                EventType.COMMAND_REJECTED,
                self.clock,
                result=exc.reason.value,
                details={"detail": exc.detail[:200], "command_id": command_id},
            )
        )
        if command_id is None:
            return  # nothing the cloud could correlate an answer with
        result = CommandResult(
            command_id=command_id,
            gateway_id=self.identity.gateway_id,
            status=CommandStatus.REJECTED,
            reason=exc.reason.value,
            detail=exc.detail[:200],
            finished_at=Clock.utc(self.clock.now()),
        )
        await self._answer(session, message, result)

    async def _answer(self, session: MqttSession, message: Message, result: CommandResult) -> None:
        own = topic(self.identity.gateway_id, Channel.CMD_RESULT)
        # Only our own result topic is allowed by the broker's ACL; ignore any other request.
        reply_to = message.response_topic if message.response_topic == own else own
        try:
            await session.publish(
                reply_to,
                encode(result),
                correlation_data=message.correlation_data or result.command_id.encode(),
            )
        except MqttError as exc:
            log.error("could not answer command %s: %s", result.command_id, exc)


def _command_id(correlation: bytes | None) -> str | None:
    """The command id the cloud put in the correlation data, when it is a UUID."""
    if not correlation:
        return None
    try:
        return str(uuid.UUID(correlation.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None
