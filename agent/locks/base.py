"""The one small interface every lock driver implements (relay, Nuki over BLE, UniFi Access).

The daemon builds one driver per lock of the applied desired state (`LockSpec`: id, kind, device
reference, settings), starts it, and from then on only talks to it through this interface:

- `perform(action)` for remote commands and the keypad's strike;
- `status()` for reported state (bolt, battery, door sensor, reachability);
- `set_codes(codes)` for locks that check codes themselves (the Nuki Keypad, UniFi readers): the
  driver reconciles the device towards that set in its own task and keeps `code_states()` current;
- events it observes (an entry made on the Nuki Keypad, a PIN typed at a UniFi reader, a battery
  alert) go out through the `EventSink` it was given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from agent.clock import Clock
from sync_protocol.models import (
    CodeKind,
    DeliveryState,
    DoorState,
    Event,
    Inventory,
    LockKind,
    LockState,
    LockStatus,
)


class LockAction(StrEnum):
    """What a lock can be asked to do."""

    UNLOCK = "unlock"
    LOCK = "lock"
    UNLATCH = "unlatch"


# --- errors: one tree for every driver ------------------------------------------------------


class LockError(Exception):
    """A lock operation failed; `.lock_id` names the lock, the message says why."""

    def __init__(self, lock_id: str, message: str) -> None:
        super().__init__(message)
        self.lock_id = lock_id


class LockUnreachable(LockError, ConnectionError):
    """The lock (or its controller) cannot be reached now; trying again later may work."""


class LockTimeout(LockUnreachable, TimeoutError):
    """The lock did not answer in time."""


class ActionUnsupported(LockError):
    """This lock cannot do that action at all (e.g. a strike relay cannot "lock")."""


class ActionRefused(LockError):
    """The lock refused or failed the action (motor blocked, not authorised, …)."""

    def __init__(self, lock_id: str, message: str, code: str | None = None) -> None:
        super().__init__(lock_id, message)
        self.code = code


class NotPaired(LockError):
    """The agent holds no credentials for this lock; the message says how to pair it."""


# --- what drivers exchange with the agent ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """How an action ended: the state the lock reported afterwards, and a short note."""

    state: LockState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LockSnapshot:
    """A driver's view of its lock, for reported state."""

    state: LockState = LockState.UNKNOWN
    battery_percent: int | None = None
    battery_critical: bool | None = None
    door: DoorState = DoorState.UNKNOWN
    reachable: bool = False
    last_seen: float | None = None  # Unix time of the last contact

    def to_status(self, lock_id: str) -> LockStatus:
        """The wire form for reported state."""
        return LockStatus(
            lock_id=lock_id,
            state=self.state,
            battery_percent=self.battery_percent,
            battery_critical=self.battery_critical,
            door=self.door,
            reachable=self.reachable,
            last_seen=Clock.utc(self.last_seen) if self.last_seen is not None else None,
        )


@dataclass(frozen=True, slots=True)
class LockCode:
    """A code a code-checking lock must hold, with the PIN unsealed just in time (never stored)."""

    code_id: str
    kind: CodeKind
    pin: str = field(repr=False)
    starts_at: float | None  # Unix time; None: valid from now
    ends_at: float | None  # Unix time; None: permanent
    label: str = ""
    booking_id: str | None = None
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class CodeState:
    """A code's delivery state on one lock."""

    state: DeliveryState
    error: str | None = None


EventSink = Callable[[Event], Awaitable[None]]


def _nothing_changed() -> None:
    """The default change callback: nobody listens."""


@dataclass(frozen=True)
class DriverContext:
    """What the daemon hands every driver it builds."""

    state_dir: Path
    clock: Clock
    emit: EventSink
    # Call when status or code states changed, so reported state goes out (debounced) soon.
    changed: Callable[[], None] = _nothing_changed


@runtime_checkable
class LockDriver(Protocol):
    """One lock, whatever its kind."""

    lock_id: str
    kind: LockKind

    async def start(self) -> None:
        """Begin watching the lock (connections, subscriptions, reconcile loops)."""

    async def stop(self) -> None:
        """Stop every task and release the device."""

    async def perform(self, action: LockAction) -> ActionOutcome:
        """Do an action once (never repeated after the lock accepted it); raise LockError."""

    def status(self) -> LockSnapshot:
        """The latest known state, without I/O."""

    @property
    def stores_codes(self) -> bool:
        """Whether the lock checks codes itself (then `set_codes` matters)."""

    def set_codes(self, codes: Sequence[LockCode]) -> None:
        """Replace the codes the lock should hold; the driver reconciles in the background."""

    def code_states(self) -> Mapping[str, CodeState]:
        """Delivery state per code id, for every code desired or still being removed."""


@runtime_checkable
class Integration(Protocol):
    """A family of locks sharing one connection or radio (all UniFi doors, all Nuki locks).

    The daemon creates each configured integration once, starts it, asks it for a driver for every
    lock of its kind in the applied desired state, and merges its inventory into reported state.
    """

    kind: LockKind

    async def start(self) -> None:
        """Connect / start scanning."""

    async def stop(self) -> None:
        """Stop every driver and connection."""

    def driver(self, lock_id: str, ref: str, settings: Mapping[str, object]) -> LockDriver:
        """The driver for one lock (the same object again for the same lock id)."""

    def release(self, lock_id: str) -> None:
        """The lock left the desired state: stop and forget its driver."""

    def inventory(self) -> Inventory:
        """What this integration can reach (only its own part of the inventory is filled)."""
