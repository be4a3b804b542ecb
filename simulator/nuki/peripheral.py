"""The emulated lock on the radio: bumble GATT server, adverts, 20-byte indications, idle drop.

Runs the real bumble host stack on a (virtual or real) controller. Transport faults live here:
delayed answers, a corrupted, truncated or replayed frame, a link dropped on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bumble import hci
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.transport.common import TransportSink, TransportSource

from agent.locks.nuki.adverts import format_nuki_id, ibeacon_payload
from agent.locks.nuki.const import (
    APPLE_COMPANY_ID,
    KEYTURNER_GDIO,
    KEYTURNER_SERVICE,
    KEYTURNER_USDIO,
    PAIRING_GDIO,
    PAIRING_SERVICE,
)
from simulator.nuki.lock import DropLink, Effect, Indicate, NukiLock
from sync_protocol.aio import wait_event

log = logging.getLogger(__name__)

DEFAULT_MTU: Final = 23  # the lock never negotiates more: indications carry 20 bytes
IDLE_DISCONNECT_S: Final = 20.0  # the lock drops an idle link after about 20 s
ADVERTISING_INTERVAL_MS: Final = 100.0
TX_POWER: Final = -60  # dBm in the iBeacon's TX byte (bit 0 is the state-changed flag)
AD_FLAGS: Final = bytes([2, 0x01, 0x06])  # LE general discoverable, BR/EDR not supported


def lock_address(nuki_id: int) -> hci.Address:
    """A static random address derived from the Nuki ID."""
    raw = nuki_id.to_bytes(4, "big")
    text = ":".join(f"{b:02X}" for b in (0xD4, *raw, 0x01))
    return hci.Address(text, hci.Address.RANDOM_DEVICE_ADDRESS)


def advertising_data(nuki_id: int, pairing: bool, state_changed: bool) -> bytes:
    """Pairing mode: service data with the Nuki ID; door mode: the iBeacon with the flag."""
    if pairing:
        service = bytes(reversed(bytes.fromhex(PAIRING_SERVICE.replace("-", ""))))
        payload = service + nuki_id.to_bytes(4, "big")
        return AD_FLAGS + bytes([len(payload) + 1, 0x21]) + payload
    beacon = APPLE_COMPANY_ID.to_bytes(2, "little") + ibeacon_payload(
        nuki_id, TX_POWER, state_changed
    )
    return AD_FLAGS + bytes([len(beacon) + 1, 0xFF]) + beacon


@dataclass
class TransportFaults:
    """Faults on outgoing frames, each for the next N frames."""

    corrupt: int = 0  # flip a bit inside the box
    truncate: int = 0  # send all but the last 3 bytes
    replay: int = 0  # send the frame, then the same frame again
    delay_s: float = 0.0  # wait before every answer


class NukiPeripheral:
    """Hosts one NukiLock on a bumble device."""

    def __init__(
        self,
        lock: NukiLock,
        device: Device,
        *,
        idle_timeout_s: float = IDLE_DISCONNECT_S,
        advertising_interval_ms: float = ADVERTISING_INTERVAL_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = lock
        self.device = device
        self.idle_timeout_s = idle_timeout_s
        self.advertising_interval_ms = advertising_interval_ms
        self.clock = clock
        self.faults = TransportFaults()
        self.connection: Connection | None = None
        self._link_closed = asyncio.Event()  # set when the current link drops
        self.last_activity = 0.0
        self.frames_sent = 0
        self.connections = 0
        self.listeners: set[Callable[[dict[str, Any]], None]] = set()
        self._queue: asyncio.Queue[Effect] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._advertised: tuple[bool, bool] | None = None
        self._chars: dict[str, Characteristic[bytes]] = {}

    @classmethod
    def on_hci(
        cls, lock: NukiLock, source: TransportSource, sink: TransportSink, **kwargs: Any
    ) -> NukiPeripheral:
        """A peripheral with its own bumble host on an HCI source/sink."""
        world = lock.world
        device = Device(
            name=world.name,
            address=lock_address(world.nuki_id),
            host=Host(controller_source=source, controller_sink=sink),
        )
        return cls(lock, device, **kwargs)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Power on, publish the GATT services and start advertising."""
        device = self.device
        device.gatt_server.max_mtu = DEFAULT_MTU
        props = Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE
        for uuid in (PAIRING_GDIO, KEYTURNER_GDIO, KEYTURNER_USDIO):
            self._chars[uuid] = Characteristic(
                uuid, props, Characteristic.WRITEABLE, CharacteristicValue(write=self._writer(uuid))
            )
        device.add_services(
            [
                Service(PAIRING_SERVICE, [self._chars[PAIRING_GDIO]]),
                Service(
                    KEYTURNER_SERVICE, [self._chars[KEYTURNER_GDIO], self._chars[KEYTURNER_USDIO]]
                ),
            ]
        )
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        await device.power_on()
        await self._advertise(force=True)
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="nuki-send"),
            asyncio.create_task(self._timer_loop(), name="nuki-timer"),
        ]

    async def stop(self) -> None:
        """Disconnect and stop every task."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.disconnect("stopping")
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()

    # --- events for the control socket ---------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        """Tell every listener (control watchers) what happened."""
        event.setdefault("at", round(self.clock(), 3))
        for listener in list(self.listeners):
            listener(event)

    # --- connections ---------------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self._link_closed = asyncio.Event()
        self.connections += 1
        self.last_activity = self.clock()
        self.lock.connected()
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )
        self.publish({"kind": "connected", "peer": str(connection.peer_address)})
        self._wake.set()

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        self.publish({"kind": "disconnected", "reason": int(reason)})
        if self.connection is not connection:
            return  # a late event of an older link
        self.connection = None
        self._link_closed.set()
        self.lock.disconnected()
        while not self._queue.empty():
            self._queue.get_nowait()
        asyncio.get_running_loop().create_task(self._advertise(force=True))

    async def disconnect(self, why: str) -> None:
        """Drop the current link, if any."""
        connection = self.connection
        if connection is None:
            return
        log.info("nuki %s: disconnecting (%s)", format_nuki_id(self.lock.world.nuki_id), why)
        with contextlib.suppress(Exception):
            await connection.disconnect(hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR)

    def _writer(self, uuid: str) -> Callable[[Connection, bytes], None]:
        def on_write(connection: Connection, value: bytes) -> None:
            now = self.clock()
            self.last_activity = now
            self.publish({"kind": "write", "characteristic": uuid[4:8], "size": len(value)})
            self._enqueue(self.lock.write(uuid, bytes(value), now))

        return on_write

    def _enqueue(self, effects: list[Effect]) -> None:
        for effect in effects:
            self._queue.put_nowait(effect)
        self._wake.set()

    # --- sending -------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            effect = await self._queue.get()
            connection = self.connection
            if connection is None:
                continue
            if isinstance(effect, DropLink):
                self.publish({"kind": "fault", "what": effect.why})
                await self.disconnect(effect.why)
                continue
            closed = self._link_closed
            if self.faults.delay_s > 0:
                await asyncio.sleep(self.faults.delay_s)
            # bumble waits up to 30 s for the confirmation of an indication lost with its link
            sending = asyncio.ensure_future(self._indicate(connection, effect))
            gone = asyncio.ensure_future(closed.wait())
            await asyncio.wait({sending, gone}, return_when=asyncio.FIRST_COMPLETED)
            gone.cancel()
            if not sending.done():
                sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await sending
                except Exception as exc:  # the link dropped under us; the next write starts afresh
                    log.debug("indication failed: %s", exc)

    async def _indicate(self, connection: Connection, effect: Indicate) -> None:
        frame = self._apply_faults(effect.frame)
        frames_out = [frame]
        if self.faults.replay > 0 and effect.characteristic == KEYTURNER_USDIO:
            self.faults.replay -= 1
            frames_out.append(frame)
            self.publish({"kind": "fault", "what": "replayed frame"})
        characteristic = self._chars[effect.characteristic]
        size = connection.att_mtu - 3
        for out in frames_out:
            for start in range(0, len(out), size):
                piece = out[start : start + size]
                await self.device.gatt_server.indicate_subscriber(connection, characteristic, piece)
            self.frames_sent += 1
        self.last_activity = self.clock()

    def _apply_faults(self, frame: bytes) -> bytes:
        faults = self.faults
        if faults.corrupt > 0 and len(frame) > 40:
            faults.corrupt -= 1
            damaged = bytearray(frame)
            position = random.randrange(30, len(frame))  # noqa: S311 - inside the box
            damaged[position] ^= 1 << random.randrange(8)  # noqa: S311
            self.publish({"kind": "fault", "what": "corrupted frame"})
            return bytes(damaged)
        if faults.truncate > 0 and len(frame) > 3:
            faults.truncate -= 1
            self.publish({"kind": "fault", "what": "truncated frame"})
            return frame[:-3]
        return frame

    # --- time: motor, adverts, idle ------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            now = self.clock()
            self._enqueue(self.lock.tick(now))
            await self._advertise()
            world = self.lock.world
            deadlines = [d for d in (world.next_deadline(), world.pairing_until) if d and d > now]
            if self.connection is not None:
                idle_at = self.last_activity + self.idle_timeout_s
                if now >= idle_at and self._queue.empty():
                    await self.disconnect("idle")
                    continue
                deadlines.append(idle_at)
            self._wake.clear()
            timeout = max(0.0, min(deadlines) - self.clock()) if deadlines else None
            await wait_event(self._wake, timeout)

    def wake(self) -> None:
        """Re-evaluate timers and adverts now (after a control command)."""
        self._wake.set()

    async def _advertise(self, *, force: bool = False) -> None:
        world = self.lock.world
        wanted = (world.pairing_mode(self.clock()), world.state_changed)
        if self.connection is not None or (wanted == self._advertised and not force):
            return
        self._advertised = wanted
        name = world.name.encode()
        scan_response = bytes([len(name) + 1, AdvertisingData.COMPLETE_LOCAL_NAME]) + name
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
            if self.connection is None:
                await self.device.start_advertising(
                    advertising_data=advertising_data(world.nuki_id, *wanted),
                    scan_response_data=scan_response,
                    advertising_interval_min=self.advertising_interval_ms,
                    advertising_interval_max=self.advertising_interval_ms,
                )
