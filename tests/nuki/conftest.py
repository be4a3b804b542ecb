"""Fixtures: a virtual radio per test and the agent's bleak-on-bumble host on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.ble import bumble_backend
from agent.ble.bumble_backend import BumbleAdapter
from simulator.radio import VirtualRadio


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    """A virtual radio with nothing on it yet."""
    air = VirtualRadio()
    yield air
    await air.close()


@pytest.fixture
async def bleak_on_radio(radio: VirtualRadio) -> AsyncIterator[VirtualRadio]:
    """Every BleakClient/BleakScanner of this test runs on bumble, on its own controller."""
    bumble_backend.install_factory(lambda: BumbleAdapter.with_hci(*radio.attach("agent")))
    yield radio
    await bumble_backend.close()
    bumble_backend.uninstall()
