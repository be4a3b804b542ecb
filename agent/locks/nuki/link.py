"""One BLE connection to a Nuki over bleak + bleak-retry-connector, as a stream of messages.

A thin adapter: indication pieces go into the sans-IO channels, whole messages (or precise
protocol errors) come out of `receive()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak_retry_connector import (
    BleakClientWithServiceCache,
    BleakNotFoundError,
    establish_connection,
)

from agent.locks.nuki.channel import EncryptedChannel, PlainChannel, Received
from agent.locks.nuki.errors import (
    NukiDisconnected,
    NukiNotFound,
    NukiProtocolError,
    NukiTimeout,
    NukiTransportError,
    TruncatedFrame,
)
from agent.locks.nuki.messages import Message

log = logging.getLogger(__name__)

CONNECT_ATTEMPTS: Final = 3  # connect failures are retried quickly (~100-250 ms apart)
CONNECT_TIMEOUT_S: Final = 10.0  # per attempt: 1-2 s warm, 5-6 s when the lock sleeps
WRITE_ATTEMPTS: Final = (
    3  # a write the lock rejected at the ATT level never arrived: safe to repeat
)
WRITE_RETRY_DELAY_S: Final = 0.1
PIECE_GAP_S: Final = 1.0  # pieces of one message follow within ms; a longer gap = truncated frame
DISCONNECT_TIMEOUT_S: Final = 5.0

Channel = PlainChannel | EncryptedChannel


class _Closed:
    """Queue marker: the link dropped."""


CLOSED: Final = _Closed()


class NukiLink:
    """A connection to one lock; attach channels to characteristics, then send and receive."""

    def __init__(
        self,
        device: BLEDevice,
        nuki_id: str,
        *,
        on_disconnect: Callable[[], None] | None = None,
        piece_gap_s: float = PIECE_GAP_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.device = device
        self.nuki_id = nuki_id
        self.writes = 0  # BLE round trips started by this link (one per write)
        self.piece_gap_s = piece_gap_s
        self.connect_timeout_s = connect_timeout_s
        self._on_disconnect = on_disconnect
        self._client: BleakClient | None = None
        self._channels: dict[str, Channel] = {}
        self._queue: asyncio.Queue[Received | _Closed] = asyncio.Queue()
        self._last_piece = 0.0

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        return self._client is not None and self._client.is_connected

    def attach(self, characteristic: str, channel: Channel) -> None:
        """Decode indications of a characteristic with this channel."""
        self._channels[characteristic] = channel

    async def connect(self, characteristics: Sequence[str]) -> None:
        """Connect (with quick retries) and subscribe to the characteristics' indications."""
        try:
            client = await establish_connection(
                BleakClientWithServiceCache,
                self.device,
                f"Nuki {self.nuki_id}",
                disconnected_callback=self._disconnected,
                max_attempts=CONNECT_ATTEMPTS,
                timeout=self.connect_timeout_s,
            )
        except BleakNotFoundError as exc:
            raise NukiNotFound(
                f"lock {self.nuki_id} not reachable: {exc}", nuki_id=self.nuki_id
            ) from None
        except (BleakError, TimeoutError) as exc:
            raise NukiTransportError(
                f"connect to {self.nuki_id} failed: {exc}", nuki_id=self.nuki_id
            ) from None
        self._client = client
        self._queue = asyncio.Queue()
        await self.subscribe(characteristics)

    async def subscribe(self, characteristics: Sequence[str]) -> None:
        """Turn on indications of more characteristics."""
        client = self._client
        if client is None:
            raise NukiDisconnected(f"link to {self.nuki_id} is down", nuki_id=self.nuki_id)
        try:
            for uuid in characteristics:
                await client.start_notify(uuid, self._piece_handler(uuid))
        except (BleakError, TimeoutError) as exc:
            await self.close()
            raise NukiTransportError(
                f"subscribing on {self.nuki_id} failed: {exc}", nuki_id=self.nuki_id
            ) from None

    def _piece_handler(self, uuid: str) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def on_piece(_: BleakGATTCharacteristic, data: bytearray) -> None:
            channel = self._channels.get(uuid)
            if channel is None:
                return
            self._last_piece = time.monotonic()
            for item in channel.feed(bytes(data)):
                self._queue.put_nowait(item)

        return on_piece

    def _disconnected(self, _client: BleakClient) -> None:
        self._queue.put_nowait(CLOSED)
        if self._on_disconnect is not None:
            self._on_disconnect()

    async def close(self) -> None:
        """Disconnect (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(BleakError, TimeoutError, EOFError):
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await client.disconnect()
        self._queue.put_nowait(CLOSED)

    def reset(self) -> None:
        """Drop partial frames and anything queued (before a fresh request)."""
        for channel in self._channels.values():
            channel.reset()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Closed):
                self._queue.put_nowait(item)
                break

    async def send(self, characteristic: str, frame: bytes) -> None:
        """Write a frame (with response); raise NukiDisconnected when the link is gone."""
        for attempt in range(WRITE_ATTEMPTS):
            client = self._client
            if client is None or not client.is_connected:
                raise NukiDisconnected(f"link to {self.nuki_id} is down", nuki_id=self.nuki_id)
            self.writes += 1
            try:
                await client.write_gatt_char(characteristic, frame, response=True)
                return
            except BleakGATTProtocolError:
                if attempt + 1 == WRITE_ATTEMPTS:
                    raise NukiTransportError(
                        f"lock {self.nuki_id} rejected our writes", nuki_id=self.nuki_id
                    ) from None
                await asyncio.sleep(WRITE_RETRY_DELAY_S)
            except TimeoutError:
                raise NukiTimeout(
                    f"write to {self.nuki_id} timed out", nuki_id=self.nuki_id
                ) from None
            except (BleakError, EOFError) as exc:
                raise NukiDisconnected(
                    f"write to {self.nuki_id} failed: {exc}", nuki_id=self.nuki_id
                ) from None

    def _pending(self) -> bool:
        return any(
            isinstance(channel, EncryptedChannel) and channel.pending
            for channel in self._channels.values()
        )

    async def receive(self, timeout_s: float) -> Message:
        """The next message; raise NukiTimeout, NukiDisconnected or the frame's protocol error."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            remaining = deadline - loop.time()
            wait = min(remaining, self.piece_gap_s) if self._pending() else remaining
            try:
                async with asyncio.timeout(max(0.0, wait)):
                    item = await self._queue.get()
            except TimeoutError:
                if self._pending() and time.monotonic() - self._last_piece >= self.piece_gap_s:
                    self.reset()
                    raise TruncatedFrame(
                        f"a frame from {self.nuki_id} stopped short "
                        f"(no further piece within {self.piece_gap_s} s)"
                    ) from None
                if loop.time() >= deadline:
                    raise NukiTimeout(
                        f"no answer from {self.nuki_id} within {timeout_s} s", nuki_id=self.nuki_id
                    ) from None
                continue
            if isinstance(item, _Closed):
                self._queue.put_nowait(item)  # every later receive sees it too
                raise NukiDisconnected(f"link to {self.nuki_id} dropped", nuki_id=self.nuki_id)
            if isinstance(item, NukiProtocolError):
                item.nuki_id = self.nuki_id
                raise item
            return item
