"""All Nuki locks of a gateway: one BLE scanner (the beacon watcher) and one driver per lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from agent.ble import bumble_backend
from agent.locks.base import DriverContext, LockDriver
from agent.locks.nuki.adverts import parse_advert
from agent.locks.nuki.client import Timeouts
from agent.locks.nuki.config import BleConfig, NukiConfig
from agent.locks.nuki.driver import NukiLockDriver, Sighting
from agent.locks.nuki.retry import Backoff, RetryPolicy
from agent.locks.nuki.store import NukiStore
from sync_protocol.models import Inventory, LockKind, NukiDevice

log = logging.getLogger(__name__)

SCAN_RETRY_BASE_S = 5.0  # an adapter missing at start (USB dongle late, BlueZ restarting)...
SCAN_RETRY_CAP_S = 300.0  # ...is looked for again, at most every 5 minutes
ScannerFactory = Callable[..., Any]  # BleakScanner's signature: detection_callback, scanning_mode


def normalise_ref(ref: str) -> str:
    """A smart lock's ref as a Nuki ID (8 upper-case hex digits); raise ValueError."""
    text = ref.strip().upper().removeprefix("NUKI_").removeprefix("0X")
    if len(text) != 8 or any(c not in "0123456789ABCDEF" for c in text):
        raise ValueError(
            f"a Nuki lock's ref is its 8-hex-digit Nuki ID (e.g. 2A3B4C5D), not {ref!r}"
        )
    return text


class NukiIntegration:
    """Implements agent.locks.base.Integration for Nuki locks over BLE."""

    kind: LockKind = LockKind.NUKI

    def __init__(
        self,
        config: NukiConfig,
        ble: BleConfig,
        ctx: DriverContext,
        *,
        policy: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        scanner_factory: ScannerFactory = BleakScanner,
        scan_backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.ble = ble
        self.ctx = ctx
        self.store = NukiStore(ctx.state_dir)
        self.policy = policy
        self.timeouts = timeouts
        self.sightings: dict[str, Sighting] = {}
        self._drivers: dict[str, NukiLockDriver] = {}
        self._scanner: BleakScanner | None = None
        self._installed = False
        self._started = False
        self._seen_events: dict[str, asyncio.Event] = {}
        self._scanner_factory = scanner_factory
        self._scan_backoff = scan_backoff or Backoff(SCAN_RETRY_BASE_S, SCAN_RETRY_CAP_S)
        self._scan_retry: asyncio.Task[None] | None = None

    @property
    def scanning(self) -> bool:
        """Whether adverts are being watched (false while no adapter could be opened)."""
        return self._scanner is not None

    async def start(self) -> None:
        """Install the bumble backend if configured and start watching adverts; without an
        adapter, keep looking for one in the background. Starting twice does nothing more."""
        if self._started:
            return
        if self.ble.hci and not bumble_backend.installed():
            bumble_backend.install(self.ble.hci)
            self._installed = True
        error = await self._start_scanner()
        if error is not None:
            log.error(
                "Nuki: cannot scan (%s); locks stay unreachable until an adapter can be opened "
                "(trying again in the background)",
                error,
            )
            self._scan_retry = asyncio.create_task(self._retry_scanner(), name="nuki-scan-retry")
        self._started = True
        for driver in self._drivers.values():
            await driver.start()

    async def _start_scanner(self) -> Exception | None:
        mode = cast(Literal["active", "passive"], self.config.scan_mode)
        scanner = self._scanner_factory(detection_callback=self._on_advert, scanning_mode=mode)
        try:
            await scanner.start()
        except (BleakError, OSError) as exc:
            return exc
        self._scanner = scanner
        return None

    async def _retry_scanner(self) -> None:
        while True:
            await asyncio.sleep(self._scan_backoff.next_delay())
            error = await self._start_scanner()
            if error is None:
                self._scan_backoff.reset()
                log.info("Nuki: scanning for locks now")
                return
            log.debug("Nuki: still cannot scan: %s", error)

    async def stop(self) -> None:
        """Stop every driver, the scanner and (if we opened it) the bumble host."""
        retry, self._scan_retry = self._scan_retry, None
        if retry is not None:
            retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry
        for driver in list(self._drivers.values()):
            await driver.stop()
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            with contextlib.suppress(BleakError, OSError):
                await scanner.stop()
        if self._installed:
            await bumble_backend.close()
            bumble_backend.uninstall()
            self._installed = False
        self._started = False

    def driver(self, lock_id: str, ref: str, settings: Mapping[str, object]) -> LockDriver:
        """The driver of the Nuki whose Nuki ID is ref."""
        existing = self._drivers.get(lock_id)
        nuki_id = normalise_ref(ref)
        if existing is not None and existing.nuki_id == nuki_id:
            return existing
        if existing is not None:
            self.release(lock_id)
        driver = NukiLockDriver(
            lock_id,
            nuki_id,
            config=self.config,
            ctx=self.ctx,
            store=self.store,
            locate=self.sightings.get,
            policy=self.policy,
            timeouts=self.timeouts,
        )
        self._drivers[lock_id] = driver
        if self._started:
            asyncio.get_running_loop().create_task(driver.start())
        return driver

    def release(self, lock_id: str) -> None:
        """Stop and forget a lock's driver."""
        driver = self._drivers.pop(lock_id, None)
        if driver is not None:
            asyncio.get_running_loop().create_task(driver.stop())

    def inventory(self) -> Inventory:
        """Every Nuki seen on the radio (and every paired one)."""
        paired = set(self.store.paired())
        devices = [
            NukiDevice(
                nuki_id=nuki_id,
                name=sighting.device.name or f"Nuki_{nuki_id}",
                paired=nuki_id in paired,
                rssi=sighting.rssi,
            )
            for nuki_id, sighting in sorted(self.sightings.items())
        ]
        seen = set(self.sightings)
        devices += [NukiDevice(nuki_id=n, name=f"Nuki_{n}", paired=True) for n in paired - seen]
        return Inventory(nuki=tuple(devices[:256]))

    async def seen(self, nuki_id: str) -> Sighting:
        """Wait for an advert of a lock."""
        while (sighting := self.sightings.get(nuki_id)) is None:
            await self._seen_events.setdefault(nuki_id, asyncio.Event()).wait()
        return sighting

    def _on_advert(self, device: BLEDevice, data: AdvertisementData) -> None:
        advert = parse_advert(data.manufacturer_data, data.service_data, data.local_name)
        if advert is None:
            return
        sighting = Sighting(device, advert, data.rssi, self.ctx.clock.now())
        self.sightings[advert.nuki_id] = sighting
        event = self._seen_events.get(advert.nuki_id)
        if event is not None:
            event.set()
        for driver in self._drivers.values():
            if driver.nuki_id == advert.nuki_id:
                driver.on_advert(sighting)
