"""Nuki over the virtual radio: lock actions through the agent's driver, cold connect, 50 codes.

Radio, emulated lock (motor time 0), a bare echo peripheral and the agent's driver run in this
process; the agent's host and the lock's host each reach their controller through a loopback TCP
port (H4), as separate processes would. The floor is a bare GATT write → indication round trip
with bleak on the same radio, measured in the same run. "BLE round trips" count ATT exchanges the
agent's host takes part in: requests it sends (discovery, CCCD writes, each part of a long write)
and indications it confirms. The agent's overhead is an action's time minus that many exchanges
at the floor's speed.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.scanner import AdvertisementData
from bumble import gatt_client, hci
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.transport import open_transport
from common import emit, summary

from agent.ble import bumble_backend
from agent.clock import Clock
from agent.locks.base import DriverContext, LockAction, LockCode
from agent.locks.nuki.adverts import parse_advert
from agent.locks.nuki.client import NukiClient
from agent.locks.nuki.config import BleConfig, NukiConfig
from agent.locks.nuki.driver import NukiLockDriver
from agent.locks.nuki.integration import NukiIntegration
from agent.locks.nuki.setup import pair_lock
from agent.locks.nuki.store import NukiStore
from simulator.nuki.emulator import LockOptions, start_lock
from simulator.radio import VirtualRadio
from sync_protocol.models import CodeKind, DeliveryState, Event

NUKI_ID = "2A3B4C5D"
ACTIONS = 300
FLOOR_SAMPLES = 300
COLD = 30
CODES = 50
WARMUP = 20
ECHO_SERVICE = "0000feed-0000-1000-8000-00805f9b34fb"
ECHO_CHAR = "0000beef-0000-1000-8000-00805f9b34fb"
ECHO_ADDRESS = "D1:22:33:44:55:66"
TARGET_OVERHEAD_P50_MS = 25.0  # the agent's share of an action: small next to a 2 s motor


def valid_pins(count: int) -> list[str]:
    """Distinct PINs that follow the lock's rules (6 digits 1-9, not starting 12)."""
    rng = random.Random(7)
    pins: set[str] = set()
    while len(pins) < count:
        pin = "".join(rng.choice("123456789") for _ in range(6))
        if not pin.startswith("12"):
            pins.add(pin)
    return sorted(pins)


class AttCounter:
    """Counts ATT exchanges of every bumble GATT client: requests it sent, indications it got.

    Each is one BLE round trip (request → response, indication → confirmation).
    """

    def __init__(self) -> None:
        self.count = 0
        send_request = gatt_client.Client.send_request
        on_indication = gatt_client.Client.on_att_handle_value_indication

        async def counting_request(client: gatt_client.Client, request: Any) -> Any:
            self.count += 1
            return await send_request(client, request)

        def counting_indication(client: gatt_client.Client, indication: Any) -> None:
            self.count += 1
            on_indication(client, indication)

        gatt_client.Client.send_request = counting_request  # type: ignore[method-assign]
        gatt_client.Client.on_att_handle_value_indication = counting_indication  # type: ignore[method-assign]


async def echo_peripheral(radio: VirtualRadio) -> Device:
    """A GATT server that indicates back what is written (the floor's peer)."""
    device = Device(
        name="echo", address=hci.Address(ECHO_ADDRESS), host=Host(*radio.attach("echo"))
    )
    char: Characteristic[bytes]

    def on_write(connection: Connection, value: bytes) -> None:
        coro = device.gatt_server.indicate_subscriber(connection, char, value)
        asyncio.get_running_loop().create_task(coro)

    char = Characteristic(
        ECHO_CHAR,
        Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
        Characteristic.WRITEABLE,
        CharacteristicValue(write=on_write),
    )
    device.add_service(Service(ECHO_SERVICE, [char]))
    await device.power_on()
    device.gatt_server.max_mtu = 23
    await device.start_advertising(
        auto_restart=True, advertising_interval_min=20, advertising_interval_max=20
    )
    return device


async def floor(samples: int) -> list[float]:
    """Bare bleak write (with response) → indication round trips to the echo peripheral."""
    got: asyncio.Queue[bytes] = asyncio.Queue()
    times = []
    async with BleakClient(ECHO_ADDRESS) as client:
        await client.start_notify(ECHO_CHAR, lambda _, data: got.put_nowait(bytes(data)))
        payload = bytes(20)
        for i in range(samples + WARMUP):
            start = time.perf_counter()
            await client.write_gatt_char(ECHO_CHAR, payload, response=True)
            await got.get()
            if i >= WARMUP:
                times.append(time.perf_counter() - start)
    return times


async def find_lock(pairing: bool) -> Any:
    found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def seen(device: Any, data: AdvertisementData) -> None:
        advert = parse_advert(data.manufacturer_data, data.service_data, data.local_name)
        if advert and (advert.pairing_mode or not pairing) and not found.done():
            found.set_result(device)

    async with BleakScanner(detection_callback=seen):
        return await asyncio.wait_for(found, 10)


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


async def run() -> dict[str, Any]:
    radio = VirtualRadio()
    agent_slot, lock_slot = await radio.serve(0, name="agent"), await radio.serve(0, name="lock")
    transport = await open_transport(lock_slot.hci)
    options = LockOptions(motor_s=0.0, push_interval_s=0.0, advertising_interval_ms=20.0,
                          security_pin=2468, pairing_s=60, idle_timeout_s=60)  # fmt: skip
    lock = await start_lock(options, transport.source, transport.sink)
    echo = await echo_peripheral(radio)
    bumble_backend.install(agent_slot.hci)
    counter = AttCounter()
    state_dir = Path(tempfile.mkdtemp(prefix="kasify-bench-nuki-"))
    store = NukiStore(state_dir)
    device = await find_lock(pairing=True)
    await pair_lock(device, NUKI_ID, store, app_id=1, name="bench", pin=2468, sync_time=True)
    creds = store.credentials(NUKI_ID)
    assert creds is not None

    floor_s = await floor(FLOOR_SAMPLES)
    await echo.stop_advertising()

    cold, cold_trips = [], []
    device = await find_lock(pairing=False)
    for _ in range(COLD):
        before = counter.count
        client: NukiClient | None = None

        async def connect_and_read() -> None:
            nonlocal client
            client = await NukiClient.connect(device, NUKI_ID, creds)
            await client.keyturner_states()

        cold.append(await timed(connect_and_read))
        cold_trips.append(counter.count - before)
        assert client is not None
        await client.close()

    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    ctx = DriverContext(state_dir, Clock(synchronized=lambda: True), record)
    integration = NukiIntegration(NukiConfig(linger_s=15.0), BleConfig(), ctx)
    driver = integration.driver("lock-bench", NUKI_ID, {})
    assert isinstance(driver, NukiLockDriver)
    await integration.start()
    await integration.seen(NUKI_ID)
    await driver.perform(LockAction.UNLOCK)
    actions, action_trips, frame_writes = [], [], []
    for i in range(ACTIONS + WARMUP):
        await driver.wait_idle()  # the post-action state read (clearing the flag) goes first
        action = LockAction.LOCK if i % 2 == 0 else LockAction.UNLOCK
        before, writes = counter.count, driver.round_trips
        elapsed = await timed(lambda: driver.perform(action))  # noqa: B023
        if i >= WARMUP:
            actions.append(elapsed)
            action_trips.append(counter.count - before)
            frame_writes.append(driver.round_trips - writes)

    now = time.time()
    codes = [
        LockCode(f"c{i}", CodeKind.GUEST, pin, now, now + 86_400, f"Guest {i}")
        for i, pin in enumerate(valid_pins(CODES))
    ]
    before, writes = counter.count, driver.round_trips
    start = time.perf_counter()
    driver.set_codes(codes)
    settled = (DeliveryState.SET, DeliveryState.FAILED)
    while not all(s.state in settled for s in driver.code_states().values()):  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    reconcile_s = time.perf_counter() - start
    codes_set = sum(s.state is DeliveryState.SET for s in driver.code_states().values())
    reconcile_trips, reconcile_writes = counter.count - before, driver.round_trips - writes

    await integration.stop()
    await lock.stop()
    await transport.close()
    await radio.close()

    ours, base = summary(actions), summary(floor_s)
    trips = sorted(action_trips)[len(action_trips) // 2]
    per_exchange_ms = base["p50_ms"] / 2  # the floor is two exchanges: write, then indication
    bare_ms = trips * per_exchange_ms
    return {
        "bench": "nuki",
        "samples": ACTIONS,
        "action_warm": ours,
        "floor_gatt_write_indication": base,
        "ratio_p50": round(ours["p50_ms"] / base["p50_ms"], 1),
        "ratio_p99": round(ours["p99_ms"] / base["p99_ms"], 1),
        "action_ble_round_trips": trips,
        "action_frame_writes": sorted(frame_writes)[len(frame_writes) // 2],
        "action_bare_radio_ms": round(bare_ms, 3),
        "agent_overhead_p50_ms": round(ours["p50_ms"] - bare_ms, 3),
        "agent_overhead_p99_ms": round(ours["p99_ms"] - bare_ms, 3),
        "cold_connect_keyturner_states": summary(cold),
        "cold_connect_ble_round_trips": sorted(cold_trips)[len(cold_trips) // 2],
        "reconcile_50_codes_s": round(reconcile_s, 3),
        "reconcile_50_codes_set": codes_set,
        "reconcile_50_codes_ble_round_trips": reconcile_trips,
        "reconcile_50_codes_frame_writes": reconcile_writes,
        "target_overhead_p50_ms": TARGET_OVERHEAD_P50_MS,
        "met": ours["p50_ms"] - bare_ms <= TARGET_OVERHEAD_P50_MS,
    }


def main() -> None:
    emit(asyncio.run(run()))


if __name__ == "__main__":
    main()
