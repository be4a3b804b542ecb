"""Assemble an emulated Nuki: lock model + bumble peripheral (+ control socket, saved state)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bumble.transport import open_transport
from bumble.transport.common import TransportSink, TransportSource

from agent.locks.nuki import crypto
from agent.locks.nuki.adverts import format_nuki_id
from simulator.nuki.control import NukiControlServer
from simulator.nuki.lock import NukiLock
from simulator.nuki.model import DEFAULT_CAPACITY, LockWorld
from simulator.nuki.peripheral import ADVERTISING_INTERVAL_MS, IDLE_DISCONNECT_S, NukiPeripheral

log = logging.getLogger(__name__)

DEFAULT_NUKI_ID = 0x2A3B4C5D


@dataclass(frozen=True)
class LockOptions:
    """How to build an emulated lock."""

    nuki_id: int = DEFAULT_NUKI_ID
    name: str | None = None
    security_pin: int = 1234
    motor_s: float = 2.0
    push_interval_s: float = 1.0
    idle_timeout_s: float = IDLE_DISCONNECT_S
    advertising_interval_ms: float = ADVERTISING_INTERVAL_MS
    capacity: int = DEFAULT_CAPACITY
    battery_drain_per_action: float = 0.0  # percent per motor run
    pairing_s: float = 0.0  # start in pairing mode for this long
    state_file: Path | None = None


def build_lock(options: LockOptions, now: float) -> NukiLock:
    """A lock model from options and (when it exists) its saved state."""
    secret, _ = crypto.generate_keypair()
    world = LockWorld(
        options.nuki_id,
        options.name or f"Nuki_{format_nuki_id(options.nuki_id)}",
        secret,
        security_pin=options.security_pin,
        motor_s=options.motor_s,
        push_interval_s=options.push_interval_s,
        capacity=options.capacity,
        battery_drain_per_action=options.battery_drain_per_action,
    )
    if options.state_file is not None and options.state_file.exists():
        world.load_json(json.loads(options.state_file.read_text()))
    if options.pairing_s > 0:
        world.pairing_until = now + options.pairing_s
    return NukiLock(world)


def save_state(lock: NukiLock, path: Path) -> None:
    """Write the lock's durable state atomically (0600: it holds the pairing keys)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(lock.world.to_json(), fh)
    os.replace(tmp, path)


async def start_lock(
    options: LockOptions, source: TransportSource, sink: TransportSink
) -> NukiPeripheral:
    """Build and start a lock on an HCI source/sink (an in-process radio slot, a transport)."""
    lock = build_lock(options, time.time())
    peripheral = NukiPeripheral.on_hci(
        lock,
        source,
        sink,
        idle_timeout_s=options.idle_timeout_s,
        advertising_interval_ms=options.advertising_interval_ms,
    )
    await peripheral.start()
    if options.state_file is not None:
        path = options.state_file

        def persist(event: dict[str, object]) -> None:
            if event.get("kind") == "disconnected":
                save_state(lock, path)

        peripheral.listeners.add(persist)
    return peripheral


async def serve_lock(
    hci: str, control_path: str, options: LockOptions, stop: asyncio.Event
) -> None:
    """Run an emulated lock on a bumble transport with its control socket until stop is set."""
    transport = await open_transport(hci)
    peripheral = await start_lock(options, transport.source, transport.sink)
    server = NukiControlServer(peripheral, control_path)
    try:
        await server.start()
        world = peripheral.lock.world
        print(
            f"kasify-sim nuki: {world.name} (Nuki ID {format_nuki_id(world.nuki_id)}) on {hci}, "
            f"control socket {control_path}",
            flush=True,
        )
        await stop.wait()
    finally:
        await server.stop()
        await peripheral.stop()
        if options.state_file is not None:
            save_state(peripheral.lock, options.state_file)
        with contextlib.suppress(Exception):
            await transport.close()
