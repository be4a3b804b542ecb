"""Fixtures: an emulated UniFi Access controller over real TLS, and agents trusting it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.locks.unifi.client import UnifiClient
from agent.locks.unifi.trust import TrustRecord
from simulator.unifi import UnifiEmulator


@pytest.fixture
async def emulator() -> AsyncIterator[UnifiEmulator]:
    """Three doors, fast relay timing and heartbeats; a fresh certificate each time."""
    async with UnifiEmulator(doors=3, unlock_s=0.3, hello_interval_s=0.2) as emu:
        yield emu


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The agent's state directory."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def trusted(state_dir: Path, emulator: UnifiEmulator) -> TrustRecord:
    """The emulator, trusted as `kasify-agent unifi trust` would record it."""
    record = TrustRecord(emulator.url, emulator.fingerprint, "CN=UniFi Access Emulator")
    record.save(state_dir)
    return record


@pytest.fixture
async def client(emulator: UnifiEmulator, trusted: TrustRecord) -> AsyncIterator[UnifiClient]:
    """A pinned client with the emulator's full-scope token."""
    unifi = UnifiClient.for_record(trusted, emulator.token)
    yield unifi
    await unifi.aclose()
