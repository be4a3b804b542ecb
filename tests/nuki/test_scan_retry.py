"""No Bluetooth adapter when the agent starts (a USB dongle plugged in late, BlueZ restarting):
the integration keeps trying to scan and picks its locks up once it can, without a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakScanner
from bleak.exc import BleakError

from agent.clock import Clock
from agent.locks.base import DriverContext
from agent.locks.nuki.config import BleConfig, NukiConfig
from agent.locks.nuki.integration import NukiIntegration
from agent.locks.nuki.retry import Backoff
from agent.locks.nuki.store import NukiStore
from simulator.radio import VirtualRadio
from sync_protocol.models import Event, LockState
from tests.nuki.support import FAST, FAST_POLICY, NUKI_ID, add_lock, fast_lock, pair


class AdapterAppearsLater:
    """BleakScanner, except that the first `missing` starts find no adapter."""

    def __init__(self, missing: int) -> None:
        self.missing = missing
        self.attempts = 0

    def __call__(self, **kwargs: Any) -> BleakScanner:
        self.attempts += 1
        if self.attempts <= self.missing:
            return _NoAdapter()  # type: ignore[return-value]
        return BleakScanner(**kwargs)


class _NoAdapter:
    async def start(self) -> None:
        raise BleakError("No Bluetooth adapters found.")

    async def stop(self) -> None:  # pragma: no cover - never started
        pass


async def test_locks_are_reached_once_an_adapter_appears(
    bleak_on_radio: VirtualRadio, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = await add_lock(bleak_on_radio, fast_lock())
    await pair(lock, NukiStore(tmp_path))
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    factory = AdapterAppearsLater(missing=3)
    integration = NukiIntegration(
        NukiConfig(linger_s=0.2),
        BleConfig(),
        DriverContext(tmp_path, Clock(synchronized=lambda: True), emit),
        policy=FAST_POLICY,
        timeouts=FAST,
        scanner_factory=factory,
        scan_backoff=Backoff(base_s=0.02, cap_s=0.05),
    )
    driver = integration.driver("lock-front", NUKI_ID, {})
    with caplog.at_level(logging.INFO, logger="agent.locks.nuki.integration"):
        await integration.start()
        try:
            assert not integration.scanning
            assert "cannot scan (No Bluetooth adapters found.)" in caplog.text
            async with asyncio.timeout(10):
                while driver.status().state is not LockState.LOCKED:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert integration.scanning
            assert factory.attempts == 4  # three misses, then it scanned and stopped trying
            assert "scanning for locks now" in caplog.text
        finally:
            await integration.stop()
