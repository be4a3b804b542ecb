"""A door strike wired to the keypad controller's relay, as a lock."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from agent.keypad import KeypadDoor
from agent.locks.base import (
    ActionOutcome,
    ActionUnsupported,
    CodeState,
    LockAction,
    LockCode,
    LockDriver,
    LockSnapshot,
    LockUnreachable,
)
from sync_protocol.models import DoorState, Inventory, LockKind, LockState


class RelayLock:
    """Unlock or unlatch = one strike pulse; a strike locks again by itself."""

    kind = LockKind.RELAY
    stores_codes = False  # the agent checks codes typed at its own keypad

    def __init__(self, lock_id: str, ref: str, keypad: KeypadDoor | None) -> None:
        self.lock_id = lock_id
        self.ref = ref
        self.keypad = keypad

    async def start(self) -> None:
        """Nothing to start: the keypad service owns the serial link."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def perform(self, action: LockAction) -> ActionOutcome:
        """Pulse the strike for unlock/unlatch; refuse lock."""
        if action is LockAction.LOCK:
            raise ActionUnsupported(
                self.lock_id, "a door strike cannot be locked remotely: it locks by itself"
            )
        if self.keypad is None:
            raise LockUnreachable(
                self.lock_id,
                f"no keypad controller with lock_ref {self.ref!r} is configured on this gateway "
                "(set [keypad] port and lock_ref in agent.toml)",
            )
        await self.keypad.pulse()
        ms = self.keypad.config.pulse_ms
        return ActionOutcome(LockState.UNLOCKED, f"strike released for {ms} ms")

    def status(self) -> LockSnapshot:
        """Reachable while the controller talks to us; unlocked while the strike is released."""
        keypad = self.keypad
        if keypad is None or not keypad.connected:
            return LockSnapshot()
        door = DoorState.UNKNOWN
        if keypad.door_open is not None:
            door = DoorState.OPEN if keypad.door_open else DoorState.CLOSED
        released = time.monotonic() < keypad.released_until
        return LockSnapshot(
            state=LockState.UNLOCKED if released else LockState.LOCKED,
            door=door,
            reachable=True,
            last_seen=time.time(),
        )

    def set_codes(self, codes: Sequence[LockCode]) -> None:
        """Codes for this door are checked by the agent itself; nothing to program."""

    def code_states(self) -> Mapping[str, CodeState]:
        """Nothing is stored on the strike (the daemon reports agent-checked codes as set)."""
        return {}


class RelayIntegration:
    """The strikes of the keypad controllers configured on this gateway."""

    kind = LockKind.RELAY

    def __init__(self, keypads: Sequence[KeypadDoor]) -> None:
        self.keypads = {k.config.lock_ref: k for k in keypads}
        self._drivers: dict[str, RelayLock] = {}

    async def start(self) -> None:
        """The keypad services run on their own."""

    async def stop(self) -> None:
        """Nothing to release."""

    def driver(self, lock_id: str, ref: str, settings: Mapping[str, object]) -> LockDriver:
        """The strike of the keypad whose lock_ref is `ref`."""
        driver = self._drivers.get(lock_id)
        if driver is None or driver.ref != ref:
            driver = RelayLock(lock_id, ref, self.keypads.get(ref))
            self._drivers[lock_id] = driver
        return driver

    def release(self, lock_id: str) -> None:
        """Forget a lock that left the desired state."""
        self._drivers.pop(lock_id, None)

    def inventory(self) -> Inventory:
        """Keypad controllers and their firmware."""
        connected = [k for k in self.keypads.values() if k.connected]
        firmware = connected[0].firmware if connected else None
        return Inventory(keypad_connected=bool(connected), keypad_firmware=firmware)
