"""Asyncio serial transport for the keypad: a thin adapter around the sans-IO link."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

import serial

from firmware_bridge.constants import BAUDRATE, LINK_TIMEOUT_S, PROTOCOL_VERSION
from firmware_bridge.errors import BridgeError, KeypadTimeout, PortError
from firmware_bridge.link import LinkEndpoint, LinkOutput, Role
from firmware_bridge.messages import (
    Capability,
    DeviceMessage,
    DoorContact,
    Heartbeat,
    Hello,
    HelloReason,
    HostHello,
    HostMessage,
    KeyEntry,
    Tamper,
)
from firmware_bridge.reconnect import ReconnectPolicy

__all__ = ["SEND_TIMEOUT_S", "SerialKeypad"]

LOG = logging.getLogger(__name__)

SEND_TIMEOUT_S: Final = 2.0  # the link gives up after ~1 s of retries; 2 s also covers a slow loop
LIVENESS_CHECK_INTERVAL_S: Final = 0.25  # how often silence on the link is checked
READ_CHUNK: Final = 4096
INCOMING_LIMIT: Final = 256  # device messages held for a slow consumer; the oldest are dropped
ERROR_LOG_BURST: Final = 5  # frame errors logged per window; more are counted, then summarised
ERROR_LOG_WINDOW_S: Final = 10.0


class SerialKeypad:
    """Host end of the keypad link on a serial port; reopens the port by itself, forever."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = BAUDRATE,
        clock: Callable[[], float] = time.monotonic,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        self.port = port
        self._baudrate = baudrate
        self._clock = clock
        self._policy = reconnect or ReconnectPolicy(clock=clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serial: serial.Serial | None = None
        self._fd: int | None = None
        self._link: LinkEndpoint | None = None
        self._lost: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._out_buf = bytearray()
        self._incoming: asyncio.Queue[DeviceMessage] = asyncio.Queue(maxsize=INCOMING_LIMIT)
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._device: Hello | None = None
        self._status: Heartbeat | None = None
        self._connected_event = asyncio.Event()
        self._link_up = False
        self._opened_at = 0.0
        self._last_probe = 0.0
        self._runner: asyncio.Task[None] | None = None
        self._running = False
        self.frame_errors = 0  # frames received that could not be used, since start
        self._errors_logged = 0
        self._error_window_start = 0.0

    # -- public API --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the port is open, the device announced itself and it spoke recently."""
        link = self._link
        if self._fd is None or link is None or self._device is None or link.last_rx_at is None:
            return False
        return self._clock() - link.last_rx_at <= LINK_TIMEOUT_S

    @property
    def device(self) -> Hello | None:
        """The device's last HELLO on the open port, None before one arrived."""
        return self._device

    @property
    def status(self) -> Heartbeat | None:
        """The device's last HEARTBEAT on the open port."""
        return self._status

    async def run(self) -> None:
        """Open the port, keep the link alive and reopen after failures until cancelled."""
        if self._running:
            raise RuntimeError(f"SerialKeypad({self.port!r}).run() is already running")
        self._running = True
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    lost = self._open()
                except PortError as exc:
                    await asyncio.sleep(self._policy.failed(exc))
                    continue
                self._policy.opened(self.port)
                try:
                    await self._supervise(lost)
                finally:
                    self._close("keypad transport stopped")
                self._policy.lost()
        finally:
            self._running = False

    async def receive(self) -> DeviceMessage:
        """Return the next message the device delivered (KEY_ENTRY, DOOR_CONTACT, HEARTBEAT …)."""
        return await self._incoming.get()

    # The agent's contract is a timeout argument (KeypadTimeout, not a bare cancellation).
    async def send(self, msg: HostMessage, *, timeout: float = SEND_TIMEOUT_S) -> None:  # noqa: ASYNC109
        """Send reliably; return once ACKed, raise DeliveryFailed, PortError or KeypadTimeout."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ticket = self._submit(msg, future)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            raise KeypadTimeout(f"{msg.TYPE.name} not acknowledged within {timeout:g} s") from None
        finally:
            self._waiters.pop(ticket, None)

    def send_nowait(self, msg: HostMessage) -> None:
        """Write msg now without waiting for its ACK; a failed delivery is logged."""
        self._submit(msg, None)

    async def wait_connected(self, timeout: float) -> Hello:  # noqa: ASYNC109
        """Wait until the device has announced itself; raise KeypadTimeout after timeout s."""
        try:
            async with asyncio.timeout(timeout):
                while self._device is None:
                    await self._connected_event.wait()
        except TimeoutError:
            raise KeypadTimeout(f"no keypad on {self.port} within {timeout:g} s") from None
        return self._device

    async def __aenter__(self) -> Self:
        self._runner = asyncio.create_task(self.run(), name=f"keypad {self.port}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runner.cancel()
        await asyncio.wait([runner])
        if not runner.cancelled() and runner.exception() is not None:
            raise runner.exception()  # type: ignore[misc]

    # -- port handling -----------------------------------------------------------------------

    def _open(self) -> asyncio.Event:
        try:
            port = serial.Serial()
            port.port = self.port
            port.baudrate = self._baudrate
            port.timeout = 0
            port.write_timeout = 0
            port.open()  # also discards stale input queued while nobody listened
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(self.port, f"cannot open: {exc}", errno=_errno_of(exc)) from exc
        fd = port.fileno()
        os.set_blocking(fd, False)
        assert self._loop is not None
        self._serial, self._fd = port, fd
        self._link = LinkEndpoint(Role.HOST)
        self._lost = asyncio.Event()
        self._opened_at = self._clock()
        self._loop.add_reader(fd, self._on_readable)
        LOG.info("keypad port %s open", self.port)
        self._start_session()
        return self._lost

    async def _supervise(self, lost: asyncio.Event) -> None:
        while not lost.is_set():
            try:
                async with asyncio.timeout(LIVENESS_CHECK_INTERVAL_S):
                    await lost.wait()
            except TimeoutError:
                self._check_liveness()

    def _check_liveness(self) -> None:
        link = self._link
        if link is None:
            return
        now = self._clock()
        last = link.last_rx_at if link.last_rx_at is not None else self._opened_at
        if now - last <= LINK_TIMEOUT_S:
            return
        if self._link_up:
            LOG.warning("keypad on %s silent for %.1f s: link down", self.port, now - last)
            self._link_up = False
            self._connected_event.clear()
        if now - self._last_probe >= LINK_TIMEOUT_S:
            self._start_session()  # probe: a device that comes back answers with HELLO

    def _port_failed(self, detail: str) -> None:
        LOG.warning("keypad port %s lost: %s", self.port, detail)
        if self._lost is not None:
            self._lost.set()
        self._close(detail)

    def _close(self, detail: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        fd, port = self._fd, self._serial
        self._fd = self._serial = self._link = None
        if fd is not None and self._loop is not None:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
        if port is not None:
            try:
                port.close()
            except (OSError, serial.SerialException):
                LOG.debug("closing %s failed", self.port, exc_info=True)
        self._out_buf.clear()
        self._device = self._status = None
        self._link_up = False
        self._connected_event.clear()
        waiters, self._waiters = self._waiters, {}
        error = PortError(self.port, detail)
        for future in waiters.values():
            if not future.done():
                future.set_exception(error)

    def _on_readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._port_failed(f"read failed: {exc}")
            return
        if not data:
            self._port_failed("end of file (device gone)")
            return
        link = self._link
        if link is not None:
            now = self._clock()
            self._apply(link.receive(data, now), now)

    def _write(self, data: bytes) -> None:
        fd = self._fd
        if fd is None or not data:
            return
        if self._out_buf:
            self._out_buf += data
            return
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._port_failed(f"write failed: {exc}")
            return
        if written < len(data):
            self._out_buf += data[written:]
            assert self._loop is not None
            self._loop.add_writer(fd, self._on_writable)

    def _on_writable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            written = os.write(fd, self._out_buf)
        except BlockingIOError:
            return
        except OSError as exc:
            self._port_failed(f"write failed: {exc}")
            return
        del self._out_buf[:written]
        if not self._out_buf and self._loop is not None:
            self._loop.remove_writer(fd)

    # -- link plumbing -----------------------------------------------------------------------

    def _submit(self, msg: HostMessage, future: asyncio.Future[None] | None) -> int:
        link = self._link
        if self._fd is None or link is None:
            raise PortError(self.port, "not open")
        if link.tx_session is None:
            self._start_session()  # the last session broke while the device was silent
        now = self._clock()
        out = link.send(msg, now)
        assert out.ticket is not None  # every host message is reliable
        if future is not None:
            self._waiters[out.ticket] = future
        self._apply(out, now)
        return out.ticket

    def _start_session(self) -> None:
        link = self._link
        if link is None:
            return
        now = self._clock()
        self._last_probe = now
        self._apply(link.send(HostHello(), now), now)

    def _apply(self, out: LinkOutput, now: float) -> None:
        self._write(out.data)
        for ticket in out.acked:
            future = self._waiters.pop(ticket, None)
            if future is not None and not future.done():
                future.set_result(None)
        for failure in out.failed:
            future = self._waiters.pop(failure.ticket or 0, None)
            if future is not None and not future.done():
                future.set_exception(failure)
            elif failure.msg_type is not HostHello.TYPE:
                LOG.warning("keypad: %s", failure)
        for error in out.errors:
            self._log_error(error, now)
        for message in out.delivered:
            if isinstance(message, Hello | Heartbeat | KeyEntry | DoorContact | Tamper):
                self._on_message(message)
        last_rx = self._link.last_rx_at if self._link is not None else None
        if out.resync and last_rx is not None and now - last_rx <= LINK_TIMEOUT_S:
            self._start_session()  # a silent device is left to the calmer liveness probe
        self._schedule_timer()

    def _on_message(self, message: DeviceMessage) -> None:
        if isinstance(message, Hello):
            if self._device is None or not self._link_up:
                LOG.info(
                    "keypad on %s: firmware %s, protocol %d (ours %d), %d relay(s), has %s",
                    self.port,
                    message.firmware_version,
                    message.protocol_version,
                    PROTOCOL_VERSION,
                    message.relay_count,
                    ", ".join(
                        c.name.lower() for c in Capability if c.name and c in message.capabilities
                    ),
                )
            self._device = message
            self._connected_event.set()
            if message.reason in (HelloReason.BOOT, HelloReason.UNKNOWN):
                self._start_session()  # it restarted: it needs our session start too
        elif isinstance(message, Heartbeat):
            self._status = message
        if self._device is not None and not self._link_up:
            self._link_up = True
            self._connected_event.set()
        if self._incoming.full():
            self._incoming.get_nowait()
        self._incoming.put_nowait(message)

    def _schedule_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        link = self._link
        deadline = link.next_deadline() if link is not None else None
        if deadline is None or self._loop is None:
            return
        self._timer = self._loop.call_later(max(0.0, deadline - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        link = self._link
        if link is not None:
            now = self._clock()
            self._apply(link.poll(now), now)

    def _log_error(self, error: BridgeError, now: float) -> None:
        self.frame_errors += 1
        if now - self._error_window_start >= ERROR_LOG_WINDOW_S:
            suppressed = self._errors_logged - ERROR_LOG_BURST
            if suppressed > 0:
                LOG.warning("keypad on %s: %d more frame errors not logged", self.port, suppressed)
            self._error_window_start = now
            self._errors_logged = 0
        self._errors_logged += 1
        if self._errors_logged <= ERROR_LOG_BURST:
            LOG.warning("keypad on %s: %s", self.port, error)


def _errno_of(exc: BaseException) -> int | None:
    number = getattr(exc, "errno", None)
    if isinstance(number, int):
        return number
    cause = exc.__cause__ or exc.__context__
    return _errno_of(cause) if cause is not None else None
