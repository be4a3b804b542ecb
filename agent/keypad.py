"""The door keypad: typed codes in, decision, strike relay and feedback out, an event for each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from agent.access import AccessState, Decision, DenyReason
from agent.clock import Clock
from agent.config import ClockConfig, KeypadConfig
from agent.keypad_lockout import KeypadLockout, LockoutState
from agent.locks.base import LockUnreachable
from agent.outbox import Outbox, new_event
from agent.store import AsyncStore
from firmware_bridge.errors import BridgeError
from firmware_bridge.messages import (
    DeviceMessage,
    DoorContact,
    DoorState,
    Hello,
    KeyEntry,
    Outcome,
    RelayPulse,
    Result,
    Tamper,
)
from firmware_bridge.transport import SerialKeypad
from sync_protocol.models import EventType, LockKind, Method, Scalar

log = logging.getLogger(__name__)

LINK_CHECK_INTERVAL_S = 1.0  # how often we look at the link to report (dis)connection events
PULSE_ACK_TIMEOUT_S = 1.0  # the controller ACKs within milliseconds; 5 retransmissions fit
LOCKOUT_KEY = "keypad_lockout"


class KeypadDoor:
    """Serves one keypad controller and the strike relay wired to it."""

    def __init__(
        self,
        config: KeypadConfig,
        access: AccessState,
        outbox: Outbox,
        clock: Clock,
        *,
        store: AsyncStore | None = None,
        lockout: LockoutState | None = None,
        clock_policy: ClockConfig | None = None,
        link: SerialKeypad | None = None,
    ) -> None:
        if config.port is None:
            raise ValueError("the keypad needs a serial port")
        self.config = config
        self.access = access
        self.outbox = outbox
        self.clock = clock
        self.store = store
        self.lockout = KeypadLockout(lockout)
        self.clock_policy = clock_policy or ClockConfig()
        self.link = link or SerialKeypad(config.port, baudrate=config.baudrate)
        self.connected = False
        self.door_open: bool | None = None
        self.released_until = 0.0  # monotonic time until which the strike is released
        self.changed = asyncio.Event()
        self._lockout_end: asyncio.TimerHandle | None = None
        self._lockout_task: asyncio.Task[None] | None = None

    @property
    def lock_id(self) -> str | None:
        """The relay lock this keypad opens, from the applied desired state."""
        locks = self.access.locks_for(LockKind.RELAY.value, self.config.lock_ref)
        return locks[0].id if locks else None

    @property
    def firmware(self) -> str | None:
        """The controller's firmware version, once it said hello."""
        device: Hello | None = self.link.device
        return device.firmware_version if device else None

    async def run(self) -> None:
        """Keep the port open and handle every device message."""
        self._schedule_lockout_end()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.link.run())
            tasks.create_task(self._watch_link())
            while True:
                await self.handle(await self.link.receive())

    async def handle(self, message: DeviceMessage) -> None:
        """React to one message from the controller."""
        if isinstance(message, KeyEntry):
            await self.on_entry(message.code)
        elif isinstance(message, DoorContact) and message.state is not DoorState.UNKNOWN:
            self.door_open = message.is_open
            kind = EventType.DOOR_OPENED if message.is_open else EventType.DOOR_CLOSED
            await self.outbox.add(new_event(kind, self.clock, lock_id=self.lock_id))
            self.changed.set()
        elif isinstance(message, Tamper):
            await self.outbox.add(
                new_event(
                    EventType.TAMPER,
                    self.clock,
                    lock_id=self.lock_id,
                    result="active" if message.active else "clear",
                )
            )

    async def pulse(self) -> None:
        """Release the strike once; return when the controller confirmed the pulse."""
        lock_id = self.lock_id or self.config.lock_ref
        try:
            await self.link.send(
                RelayPulse(self.config.relay, self.config.pulse_ms), timeout=PULSE_ACK_TIMEOUT_S
            )
        except BridgeError as exc:
            raise LockUnreachable(
                lock_id, f"keypad controller on {self.config.port}: {exc}"
            ) from exc
        self.released_until = time.monotonic() + self.config.pulse_ms / 1000
        self.changed.set()

    def _feedback(self, outcome: Outcome) -> None:
        with contextlib.suppress(BridgeError):  # the guest's LED is best effort
            self.link.send_nowait(Result(outcome))

    async def on_entry(self, entry: str) -> Decision:
        """Decide on a typed code, act on the hardware first, then record the decision."""
        now = self.clock.now()
        if self.lockout.remaining(now) > 0:
            self.lockout.refuse()
            self._feedback(Outcome.LOCKED_OUT)
            await self._save_lockout()
            return Decision(False, DenyReason.LOCKED_OUT)
        before = self.lockout.state.to_json()
        lock_id = self.lock_id
        honour = self.clock.trusted or self.clock_policy.untrusted == "honour"
        decision = self.access.decide(entry, lock_id, now, time_limited=honour)
        details: dict[str, Scalar] = {"reason": decision.reason.value} if decision.reason else {}
        result = "granted" if decision.granted else "denied"
        lockout_s: float | None = None
        if decision.granted:
            try:
                await self.pulse()
                self._feedback(Outcome.GRANTED)
            except LockUnreachable as exc:
                log.error("%s", exc)
                details["error"] = str(exc)[:200]
                result = "error"
                self._feedback(Outcome.ERROR)
            self.lockout.success()
        else:
            lockout_s = self.lockout.failure(now)
            self._feedback(Outcome.LOCKED_OUT if lockout_s else Outcome.DENIED)
        if self.lockout.state.to_json() != before:  # a valid code after a valid code: no write
            await self._save_lockout()
        code = decision.code
        await self.outbox.add(
            new_event(
                EventType.ACCESS_GRANTED if decision.granted else EventType.ACCESS_DENIED,
                self.clock,
                lock_id=lock_id,
                code_id=code.id if code else None,
                booking_id=code.booking_id if code else None,
                task_id=code.task_id if code else None,
                method=Method.GATEWAY_KEYPAD,
                result=result,
                details=details,
            )
        )
        if lockout_s:
            log.warning(
                "keypad on %s locked for %.0f s after wrong codes", self.config.port, lockout_s
            )
            failures = len(self.lockout.state.failures)
            await self.outbox.add(
                new_event(
                    EventType.KEYPAD_LOCKOUT,
                    self.clock,
                    lock_id=lock_id,
                    method=Method.GATEWAY_KEYPAD,
                    result="locked",
                    details={"duration_s": lockout_s, "failures": failures},
                )
            )
            self._schedule_lockout_end()
        return decision

    async def _save_lockout(self) -> None:
        if self.store is not None:
            await self.store.call(self.store.sync.put, LOCKOUT_KEY, self.lockout.state.to_json())

    def _schedule_lockout_end(self) -> None:
        remaining = self.lockout.remaining(self.clock.now())
        if self.lockout.state.ended_noticed:
            return
        if self._lockout_end is not None:
            self._lockout_end.cancel()
        self._lockout_end = asyncio.get_running_loop().call_later(remaining, self._lockout_over)

    def _lockout_over(self) -> None:
        self._lockout_task = asyncio.create_task(self._report_lockout_end())

    async def _report_lockout_end(self) -> None:
        refused = self.lockout.end_notice(self.clock.now())
        if refused is None:
            self._schedule_lockout_end()  # the clock moved under us; look again later
            return
        await self._save_lockout()
        await self.outbox.add(
            new_event(
                EventType.KEYPAD_LOCKOUT,
                self.clock,
                lock_id=self.lock_id,
                method=Method.GATEWAY_KEYPAD,
                result="ended",
                details={"refused_entries": refused},
            )
        )

    async def _watch_link(self) -> None:
        while True:
            connected = self.link.connected
            if connected != self.connected:
                self.connected = connected
                kind = EventType.KEYPAD_CONNECTED if connected else EventType.KEYPAD_DISCONNECTED
                log.info("keypad on %s %s", self.config.port, kind.value.split("_")[1])
                await self.outbox.add(
                    new_event(
                        kind, self.clock, lock_id=self.lock_id, details={"firmware": self.firmware}
                    )
                )
                self.changed.set()
            await asyncio.sleep(LINK_CHECK_INTERVAL_S)
