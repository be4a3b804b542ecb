"""Test harness: a virtual radio, emulated locks on it, and the agent's bumble host."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from agent.clock import Clock
from agent.locks.base import DriverContext, LockCode
from agent.locks.nuki.adverts import NukiAdvert, parse_advert
from agent.locks.nuki.client import Timeouts
from agent.locks.nuki.config import BleConfig, NukiConfig
from agent.locks.nuki.driver import NukiLockDriver
from agent.locks.nuki.integration import NukiIntegration
from agent.locks.nuki.retry import RetryPolicy
from agent.locks.nuki.setup import pair_lock
from agent.locks.nuki.store import NukiStore
from simulator.nuki.emulator import LockOptions, start_lock
from simulator.nuki.peripheral import NukiPeripheral
from simulator.radio import VirtualRadio
from sync_protocol.models import CodeKind, Event

NUKI_ID = "2A3B4C5D"
PIN = 4321
FAST = Timeouts(reply_s=1.0, complete_s=3.0, connect_s=3.0, piece_gap_s=0.3)
FAST_POLICY = RetryPolicy(quick_delay_s=0.01, busy_base_s=0.02, cap_s=0.1)


def fast_lock(**overrides: object) -> LockOptions:
    """A lock with a quick motor and quick adverts."""
    values: dict[str, object] = {
        "security_pin": PIN,
        "motor_s": 0.02,
        "push_interval_s": 0.01,
        "advertising_interval_ms": 20.0,
        "idle_timeout_s": 30.0,
    }
    values.update(overrides)
    return LockOptions(**values)  # type: ignore[arg-type]


async def add_lock(radio: VirtualRadio, options: LockOptions | None = None) -> NukiPeripheral:
    """An emulated lock on its own controller of the radio."""
    return await start_lock(options or fast_lock(), *radio.attach("lock"))


async def find(nuki_id: str = NUKI_ID, *, pairing: bool = False) -> tuple[BLEDevice, NukiAdvert]:
    """Scan through bleak until the lock's advert shows up."""
    found: asyncio.Future[tuple[BLEDevice, NukiAdvert]] = asyncio.get_running_loop().create_future()

    def seen(device: BLEDevice, data: AdvertisementData) -> None:
        advert = parse_advert(data.manufacturer_data, data.service_data, data.local_name)
        wanted = advert and advert.nuki_id == nuki_id and (advert.pairing_mode or not pairing)
        if wanted and advert and not found.done():
            found.set_result((device, advert))

    async with BleakScanner(detection_callback=seen):
        async with asyncio.timeout(5):
            return await found


async def pair(
    lock: NukiPeripheral, store: NukiStore, *, pin: int | None = PIN
) -> dict[str, object]:
    """Put the lock in pairing mode and pair the way `kasify-agent nuki pair` does."""
    lock.lock.world.pairing_until = time.time() + 30
    lock.wake()
    device, advert = await find(pairing=True)
    return await pair_lock(
        device, advert.nuki_id, store, app_id=77, name="Kasify Test", pin=pin, sync_time=True,
        timeouts=FAST,
    )  # fmt: skip


class WallClock:
    """A wall clock tests can move."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.synced = True  # what the system says about its clock

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Agent:
    """The agent side: integration, one driver, the events it emitted."""

    integration: NukiIntegration
    driver: NukiLockDriver
    events: list[Event]
    wall: WallClock
    store: NukiStore
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        """Wait until predicate holds (checked every 10 ms; fails after within_s)."""
        async with asyncio.timeout(within_s):
            while not predicate():  # noqa: ASYNC110 - the agent offers no event for every state
                await asyncio.sleep(0.01)

    def of_type(self, kind: str) -> list[Event]:
        """Events of one type."""
        return [e for e in self.events if e.type == kind]


async def start_agent(
    state_dir: Path, *, lock_id: str = "lock-front", config: NukiConfig | None = None
) -> Agent:
    """An integration with one driver for NUKI_ID (the bumble backend must be installed)."""
    events: list[Event] = []
    wall = WallClock()

    async def emit(event: Event) -> None:
        events.append(event)

    clock = Clock(wall=wall, synchronized=lambda: wall.synced, sync_check_interval_s=0)
    ctx = DriverContext(state_dir, clock, emit)
    integration = NukiIntegration(
        config or NukiConfig(linger_s=0.2), BleConfig(), ctx, policy=FAST_POLICY, timeouts=FAST
    )
    driver = integration.driver(lock_id, NUKI_ID, {})
    assert isinstance(driver, NukiLockDriver)
    await integration.start()
    return Agent(integration, driver, events, wall, integration.store)


def code(code_id: str, pin: str, *, start: float | None = None, end: float | None = None,
         label: str = "", booking: str | None = None) -> LockCode:  # fmt: skip
    """A desired code."""
    return LockCode(code_id, CodeKind.GUEST, pin, start, end, label or code_id, booking)
