"""The locks of the applied desired state, each with its driver, and what they report."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from agent.locks.base import Integration, LockCode, LockDriver
from agent.locks.unavailable import UnavailableLock
from agent.store import StoredCode, StoredLock
from sync_protocol.aio import wait_event
from sync_protocol.models import (
    CodeDelivery,
    DeliveryState,
    Inventory,
    LockKind,
    LockStatus,
    NukiDevice,
    UnifiDoor,
)

log = logging.getLogger(__name__)


IntegrationFactory = Callable[[], Integration]
DRAIN_TIMEOUT_S = 300.0  # a lock leaving the property gets this long to have its codes deleted
DRAIN_POLL_S = 0.2


@dataclass
class _Drain:
    """A lock that left the desired state, while its codes are being deleted."""

    driver: LockDriver
    enough: asyncio.Event = field(default_factory=asyncio.Event)  # stop waiting
    keep: bool = False  # the lock came back: leave the driver running
    task: asyncio.Task[None] | None = None


class LockFleet:
    """Builds, keeps and releases one driver per lock, through each kind's integration.

    An integration given as a factory is built (and its libraries imported) only when the first
    lock of its kind appears, so a gateway without Nuki locks never loads the BLE stack.
    """

    def __init__(
        self,
        integrations: Mapping[LockKind, Integration],
        factories: Mapping[LockKind, IntegrationFactory] | None = None,
    ) -> None:
        self.integrations = dict(integrations)
        self.factories = dict(factories or {})
        self.drivers: dict[str, LockDriver] = {}
        self._started: set[str] = set()
        self._draining: dict[str, _Drain] = {}
        self.running = False
        self.drain_timeout_s = DRAIN_TIMEOUT_S

    async def start(self) -> None:
        """Start every integration built so far."""
        self.running = True
        for integration in self.integrations.values():
            await integration.start()

    async def _integration(self, kind: LockKind) -> Integration | None:
        integration = self.integrations.get(kind)
        if integration is None and kind in self.factories:
            integration = self.factories[kind]()
            self.integrations[kind] = integration
            log.info("starting the %s integration for the first %s lock", kind.value, kind.value)
            if self.running:
                await integration.start()
        return integration

    async def stop(self) -> None:
        """Stop every driver and integration (a lock still being emptied keeps what is left)."""
        self.running = False
        for lock_id in list(self._draining):
            await self._end_drain(lock_id)
        for lock_id in list(self.drivers):
            await self._release(lock_id)
        for integration in self.integrations.values():
            await integration.stop()

    async def sync(self, locks: Sequence[StoredLock]) -> None:
        """Bring the drivers in line with the applied locks."""
        wanted = {lock.id: lock for lock in locks}
        for lock_id in [x for x in self.drivers if x not in wanted]:
            await self._release(lock_id, drain=True)
        for lock in locks:
            if lock.id in self._draining:  # back before its codes were all deleted: keep it
                self.drivers[lock.id] = await self._end_drain(lock.id, keep=True)
            kind = LockKind(lock.kind)
            integration = await self._integration(kind)
            driver: LockDriver
            if integration is None:
                driver = UnavailableLock(
                    lock.id, kind, f"this gateway has no {kind.value} integration configured"
                )
            else:
                try:
                    driver = integration.driver(lock.id, lock.ref, lock.settings)
                except ValueError as exc:  # e.g. a device reference that is not a Nuki ID
                    driver = UnavailableLock(lock.id, kind, f"bad device reference: {exc}")
            if self.drivers.get(lock.id) is not driver:
                if lock.id in self.drivers:
                    await self._release(lock.id)
                self.drivers[lock.id] = driver
            if lock.id not in self._started:
                await driver.start()
                self._started.add(lock.id)

    async def _release(self, lock_id: str, *, drain: bool = False) -> None:
        """Let a lock's driver go; with `drain` (the lock left the property) first delete the
        codes it holds, in the background."""
        driver = self.drivers.pop(lock_id)
        if drain and self.running and lock_id in self._started and driver.stores_codes:
            # The lock left the property: its keypad codes must not outlive that. Delete them
            # in the background (the lock may be out of reach), then let the driver go.
            driver.set_codes(())
            draining = _Drain(driver)
            draining.task = asyncio.create_task(
                self._drain(lock_id, draining), name=f"kasify-drain-{lock_id}"
            )
            self._draining[lock_id] = draining
            return
        await self._stop_driver(lock_id, driver)

    async def _drain(self, lock_id: str, drain: _Drain) -> None:
        driver = drain.driver
        deadline = time.monotonic() + self.drain_timeout_s
        # Drivers signal no event per code state: look a few times a second.
        while driver.code_states() and not drain.enough.is_set() and time.monotonic() < deadline:
            await wait_event(drain.enough, DRAIN_POLL_S)
        self._draining.pop(lock_id, None)
        if drain.keep:
            log.info("lock %s is back in the desired state; its driver stays", lock_id)
            return
        left = len(driver.code_states())
        if not left:
            log.info("lock %s left the desired state; its codes are deleted", lock_id)
        elif not drain.enough.is_set():
            log.warning(
                "lock %s left the desired state; %d of its codes could not be deleted within "
                "%.0f s and stay on it until their windows end",
                lock_id,
                left,
                self.drain_timeout_s,
            )
        await self._stop_driver(lock_id, driver)

    async def _end_drain(self, lock_id: str, *, keep: bool = False) -> LockDriver:
        """Stop deleting a lock's codes: it is back (`keep`: its driver carries on with the new
        codes) or the agent stops (the driver goes). Returns the driver."""
        draining = self._draining[lock_id]
        draining.keep = keep
        draining.enough.set()
        if draining.task is not None:
            await draining.task
        return draining.driver

    async def _stop_driver(self, lock_id: str, driver: LockDriver) -> None:
        if lock_id in self._started:
            self._started.discard(lock_id)
            try:
                await driver.stop()
            except Exception:
                log.exception("stopping the driver of lock %s failed", lock_id)
        integration = self.integrations.get(driver.kind)
        if integration is not None:
            integration.release(lock_id)

    def draining(self) -> list[str]:
        """Ids of locks that left the desired state and are having their codes deleted."""
        return sorted(self._draining)

    def driver(self, lock_id: str) -> LockDriver | None:
        """The driver of one applied lock."""
        return self.drivers.get(lock_id)

    def code_storing(self) -> list[str]:
        """Ids of locks that check codes themselves (they need their codes programmed)."""
        return [lock_id for lock_id, d in self.drivers.items() if d.stores_codes]

    def set_codes(self, codes_by_lock: Mapping[str, Sequence[LockCode]]) -> None:
        """Hand each code-storing lock the codes it should hold."""
        for lock_id in self.code_storing():
            self.drivers[lock_id].set_codes(codes_by_lock.get(lock_id, ()))

    def statuses(self) -> tuple[LockStatus, ...]:
        """Live status of every lock."""
        return tuple(d.status().to_status(lock_id) for lock_id, d in self.drivers.items())

    def deliveries(self, codes: Sequence[StoredCode]) -> tuple[CodeDelivery, ...]:
        """Each code's state on each lock it opens."""
        result = []
        for lock_id, driver in self.drivers.items():
            if not driver.stores_codes:  # the agent checks these codes itself: set once applied
                result += [
                    CodeDelivery(code_id=c.id, lock_id=lock_id, state=DeliveryState.SET)
                    for c in codes
                    if lock_id in c.lock_ids
                ]
                continue
            states = driver.code_states()
            for code_id, state in states.items():
                result.append(
                    CodeDelivery(
                        code_id=code_id, lock_id=lock_id, state=state.state, error=state.error
                    )
                )
        return tuple(result)

    def inventory(self) -> Inventory:
        """Everything the integrations can reach, merged."""
        nuki: list[NukiDevice] = []
        unifi: list[UnifiDoor] = []
        keypad_connected = False
        keypad_firmware = None
        for integration in self.integrations.values():
            part = integration.inventory()
            nuki += part.nuki
            unifi += part.unifi
            keypad_connected = keypad_connected or part.keypad_connected
            keypad_firmware = keypad_firmware or part.keypad_firmware
        return Inventory(
            nuki=tuple(nuki),
            unifi=tuple(unifi),
            keypad_connected=keypad_connected,
            keypad_firmware=keypad_firmware,
        )
