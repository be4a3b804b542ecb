"""Keypad controller emulator on a pty, its JSON-lines control socket and a client for it."""

# Control protocol: a Unix stream socket; each request is one JSON object on one line, each
# answer one JSON object on one line with "ok" (and "error" when false). Commands ("cmd"):
#   status                                   -> {"ok", "link", "tty", "plugged", "hung", ...}
#   press   {"keys": "12*3#"}                -> {"ok"}
#   type    {"code": "123456", "wait": 3.0}  -> {"ok", "code", "result", "relay_pulsed",
#            "relay", "pulse_ms", "elapsed_ms", "detail"}; result is granted | denied |
#            locked_out | error | none (nothing within "wait" s); without "wait": {"ok", "code"}
#   door    {"open": true}                   -> {"ok"}
#   tamper  {"active": true}                 -> {"ok"}
#   watch                                    -> {"ok"} then one effect object per line until
#            the client disconnects: {"kind": "relay_pulse", "at", "relay", "duration_ms"} …
#   drop    {"count": N, "direction": "in" | "out" | "both"}   drop the next N frames
#   corrupt {"count": N}                     flip one bit in each of the next N sent frames
#   garbage {"count": N}                     write N random bytes onto the line now
#   hang    {"on": true}                     stop reading, writing and running timers
#   unplug  {"seconds": 1.0, "reboot": true} close the pty, re-create and relink it later
#   reboot                                   restart the device logic (HELLO with BOOT)

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import stat
import time
import tty
from collections.abc import Callable
from typing import Any, Final

from firmware_bridge.device import KeypadDevice
from simulator.control import ControlClient, Json
from simulator.control import ControlServer as BaseControlServer

__all__ = ["ControlServer", "KeypadControl", "KeypadEmulator", "serve"]

RELAY_GRACE_S: Final = 0.25  # after GRANTED, how long "type" waits for a relay pulse frame
WATCH_QUEUE_LIMIT: Final = 1024  # effects buffered per watcher before the oldest are dropped
READ_CHUNK: Final = 4096
MAX_FAULT_COUNT: Final = 65536  # frames to drop/corrupt or garbage bytes per request


class KeypadEmulator:
    """Runs KeypadDevice on a pty master and links PATH to the slave, like /dev/ttyACM0."""

    def __init__(
        self, link_path: str, *, device_factory: Callable[[], KeypadDevice] = KeypadDevice
    ) -> None:
        self.link_path = link_path
        self._factory = device_factory
        self._t0 = time.monotonic()
        self.device = device_factory()
        self._master: int | None = None
        self._slave: int | None = None
        self.tty: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._in_buf = bytearray()
        self._watchers: set[asyncio.Queue[Json]] = set()
        self.hung = False
        self.drop_in = 0
        self.drop_out = 0
        self.corrupt = 0
        self._replug: asyncio.Task[None] | None = None

    def now(self) -> float:
        """Device clock: seconds since the emulator started."""
        return time.monotonic() - self._t0

    @property
    def plugged(self) -> bool:
        """Whether the pty exists."""
        return self._master is not None

    async def start(self) -> None:
        """Create the pty, link it and boot the device."""
        self._plug()
        self._emit(self.device.boot(self.now()))
        self._after_device()

    async def stop(self) -> None:
        """Close the pty and remove the link."""
        if self._replug is not None:
            self._replug.cancel()
            await asyncio.wait([self._replug])
        self._unplug()

    # -- inputs ------------------------------------------------------------------------------

    def press(self, keys: str) -> None:
        """Press keys in order."""
        for key in keys:
            self._emit(self.device.press(key, self.now()))
        self._after_device()

    def set_door(self, is_open: bool) -> None:
        """Set the door contact."""
        self._emit(self.device.set_door(is_open, self.now()))
        self._after_device()

    def set_tamper(self, active: bool) -> None:
        """Set the tamper switch."""
        self._emit(self.device.set_tamper(active, self.now()))
        self._after_device()

    # -- fault injection ---------------------------------------------------------------------

    def inject_garbage(self, count: int) -> None:
        """Write count random bytes onto the line."""
        self.write_raw(random.randbytes(count))  # noqa: S311 - line noise, not secrets

    def write_raw(self, data: bytes) -> None:
        """Write bytes onto the line as they are (hand-made frames, recorded noise)."""
        self._publish({"kind": "raw", "size": len(data)})
        self._write(data)

    def set_hang(self, on: bool) -> None:
        """Freeze or unfreeze the device (no input, output or timers)."""
        self.hung = on
        self._publish({"kind": "hang", "on": on})
        if not on:
            self._on_timer()

    def reboot(self) -> None:
        """Restart the device logic as after a power cycle."""
        self.device = self._factory()
        self._in_buf.clear()
        self._publish({"kind": "reboot"})
        self._emit(self.device.boot(self.now()))
        self._after_device()

    def unplug(self, seconds: float, *, reboot: bool = True) -> None:
        """Remove the pty now and bring a new one back after seconds."""
        if self._replug is not None:
            self._replug.cancel()
        self._unplug()
        self._publish({"kind": "unplugged", "seconds": seconds})
        self._replug = asyncio.create_task(self._replug_later(seconds, reboot))

    async def _replug_later(self, seconds: float, reboot: bool) -> None:
        await asyncio.sleep(seconds)
        self._plug()
        self._publish({"kind": "plugged", "tty": self.tty})
        if reboot:
            self.reboot()

    # -- effects -----------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[Json]:
        """Return a queue that receives every effect as a JSON-ready dict."""
        queue: asyncio.Queue[Json] = asyncio.Queue(maxsize=WATCH_QUEUE_LIMIT)
        self._watchers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Json]) -> None:
        """Stop delivering effects to queue."""
        self._watchers.discard(queue)

    def status(self) -> Json:
        """Return the emulator's state as a JSON-ready dict."""
        device = self.device
        return {
            "link": self.link_path,
            "tty": self.tty,
            "plugged": self.plugged,
            "hung": self.hung,
            "door_open": device.door_open,
            "tamper_active": device.tamper_active,
            "entry": device.entry,
            "awaiting_result": device.awaiting_result,
            "relays": [device.relay_energised(i) for i in range(device.relay_count)],
            "led": device.led.name.lower(),
            "last_outcome": device.last_outcome.name.lower() if device.last_outcome else None,
            "faults": {"drop_in": self.drop_in, "drop_out": self.drop_out, "corrupt": self.corrupt},
            "watchers": len(self._watchers),
        }

    def _publish(self, event: Json) -> None:
        event.setdefault("at", round(self.now(), 4))
        for queue in self._watchers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def _after_device(self) -> None:
        for effect in self.device.take_effects():
            self._publish(effect.to_json())
        self._schedule()

    # -- pty plumbing ------------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # no echo, no line editing: bytes pass through untouched
            os.set_blocking(master, False)
            name = os.ttyname(slave)
            _replace_symlink(name, self.link_path)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave, self.tty = master, slave, name
        asyncio.get_running_loop().add_reader(master, self._on_readable)

    def _unplug(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        master, slave = self._master, self._slave
        self._master = self._slave = None
        if master is not None:
            asyncio.get_running_loop().remove_reader(master)
            os.close(master)
        if slave is not None:
            os.close(slave)
        with contextlib.suppress(FileNotFoundError):
            if self.tty is not None and os.readlink(self.link_path) == self.tty:
                os.unlink(self.link_path)
        self.tty = None
        self._in_buf.clear()

    def _on_readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO while no slave is open; the pty stays ours
        if self.hung:
            return
        self._in_buf += data
        frames = bytearray()
        while (end := self._in_buf.find(0)) >= 0:
            chunk = bytes(self._in_buf[:end])
            del self._in_buf[: end + 1]
            if not chunk:
                continue
            if self.drop_in > 0:
                self.drop_in -= 1
                self._publish({"kind": "dropped", "direction": "in"})
                continue
            frames += b"\x00" + chunk + b"\x00"
        if frames:
            self._emit(self.device.receive(bytes(frames), self.now()))
            self._after_device()

    def _emit(self, data: bytes) -> None:
        if self.hung or not data:
            return
        out = bytearray()
        for chunk in data.split(b"\x00"):
            if not chunk:
                continue
            if self.drop_out > 0:
                self.drop_out -= 1
                self._publish({"kind": "dropped", "direction": "out"})
                continue
            if self.corrupt > 0:
                self.corrupt -= 1
                damaged = bytearray(chunk)
                damaged[random.randrange(len(damaged))] ^= 1 << random.randrange(8)  # noqa: S311
                chunk = bytes(damaged)
                self._publish({"kind": "corrupted"})
            out += b"\x00" + chunk + b"\x00"
        self._write(bytes(out))

    def _write(self, data: bytes) -> None:
        if self._master is None or not data:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._master, data)  # a full buffer drops bytes, like a UART nobody reads

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.device.next_deadline()
        if deadline is None or self.hung:
            return
        delay = max(0.0, deadline - self.now())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.hung:
            self._emit(self.device.tick(self.now()))
            self._after_device()


def _replace_symlink(target: str, link: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(link).st_mode
        if not stat.S_ISLNK(mode):
            raise FileExistsError(f"{link} exists and is not a symlink; not replacing it")
    temporary = f"{link}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)


class ControlServer(BaseControlServer):
    """Serves the keypad emulator's control protocol."""

    def __init__(self, emulator: KeypadEmulator, socket_path: str) -> None:
        super().__init__(socket_path)
        self.emulator = emulator

    async def handle(self, request: Json) -> Json:
        """Execute one request and return its answer."""
        emu = self.emulator
        cmd = request.get("cmd")
        if cmd == "status":
            return {"ok": True, **emu.status()}
        if cmd == "press":
            emu.press(str(request["keys"]))
        elif cmd == "type":
            return await self._type(str(request["code"]), request.get("wait"))
        elif cmd == "door":
            emu.set_door(bool(request["open"]))
        elif cmd == "tamper":
            emu.set_tamper(bool(request["active"]))
        elif cmd == "drop":
            count, direction = _count(request, 1), request.get("direction", "both")
            if direction not in ("in", "out", "both"):
                raise ValueError(f"direction must be in, out or both, not {direction!r}")
            emu.drop_in += count if direction in ("in", "both") else 0
            emu.drop_out += count if direction in ("out", "both") else 0
        elif cmd == "corrupt":
            emu.corrupt += _count(request, 1)
        elif cmd == "garbage":
            emu.inject_garbage(_count(request, 32))
        elif cmd == "hang":
            emu.set_hang(bool(request.get("on", True)))
        elif cmd == "unplug":
            emu.unplug(float(request.get("seconds", 1.0)), reboot=bool(request.get("reboot", True)))
        elif cmd == "reboot":
            emu.reboot()
        else:
            raise ValueError(f"unknown command {cmd!r}")
        return {"ok": True}

    async def _type(self, code: str, wait: object) -> Json:
        if not code.isdigit():
            raise ValueError(f"code must be digits, not {code!r}")
        emu = self.emulator
        queue = emu.subscribe()
        try:
            started = emu.now()
            emu.press(code + "#")
            if wait is None:
                return {"ok": True, "code": code}
            if not isinstance(wait, int | float):
                raise ValueError(f"wait must be a number of seconds, not {wait!r}")
            return {"ok": True, "code": code, **await _reaction(queue, float(wait), started)}
        finally:
            emu.unsubscribe(queue)

    async def watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue = self.emulator.subscribe()
        eof = asyncio.ensure_future(reader.read())  # completes when the client goes away
        effect: asyncio.Future[Json] | None = None
        try:
            writer.write(b'{"ok": true}\n')
            await writer.drain()
            while True:
                effect = asyncio.ensure_future(queue.get())
                await asyncio.wait({eof, effect}, return_when=asyncio.FIRST_COMPLETED)
                if eof.done():
                    return
                writer.write(json.dumps(effect.result()).encode() + b"\n")
                await writer.drain()
        finally:
            self.emulator.unsubscribe(queue)
            eof.cancel()
            if effect is not None:
                effect.cancel()


def _count(request: Json, default: int) -> int:
    count = int(request.get("count", default))
    if not 0 <= count <= MAX_FAULT_COUNT:
        raise ValueError(f"count must be 0..{MAX_FAULT_COUNT}, not {count}")
    return count


async def _reaction(queue: asyncio.Queue[Json], wait: float, started: float) -> Json:
    """Collect the device's reaction to a submitted code from its effect stream."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    answer: Json = {"result": "none", "relay_pulsed": False, "detail": None}
    while (remaining := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(remaining):
                effect = await queue.get()
        except TimeoutError:
            break
        kind = effect["kind"]
        if kind == "relay_pulse" and not answer["relay_pulsed"]:
            answer.update(relay_pulsed=True, relay=effect["relay"], pulse_ms=effect["duration_ms"])
        elif kind == "feedback":
            answer.update(
                result=effect["outcome"], elapsed_ms=round(1000 * (effect["at"] - started))
            )
            if answer["relay_pulsed"] or effect["outcome"] != "granted":
                break
            deadline = min(deadline, loop.time() + RELAY_GRACE_S)
        elif kind in ("host_unreachable", "cleared"):
            answer["detail"] = effect.get("detail") or f"entry cleared: {effect.get('reason')}"
            break
    return answer


class KeypadControl(ControlClient):
    """Client of a keypad emulator's control socket."""

    async def press(self, keys: str) -> None:
        """Press keys."""
        await self.request({"cmd": "press", "keys": keys})

    async def type_code(self, code: str, wait: float | None = None) -> Json:
        """Type code and '#'; with wait, return the device's reaction within wait seconds."""
        return await self.request({"cmd": "type", "code": code, "wait": wait})

    async def door(self, is_open: bool) -> None:
        """Open or close the door contact."""
        await self.request({"cmd": "door", "open": is_open})

    async def tamper(self, active: bool) -> None:
        """Trigger or clear the tamper switch."""
        await self.request({"cmd": "tamper", "active": active})

    async def fault(self, cmd: str, **params: Any) -> None:
        """Inject a fault: drop, corrupt, garbage, hang, unplug or reboot."""
        await self.request({"cmd": cmd, **params})


async def serve(link_path: str, control_path: str, stop: asyncio.Event) -> None:
    """Run an emulator with its control socket until stop is set, then clean up."""
    emulator = KeypadEmulator(link_path)
    await emulator.start()
    server = ControlServer(emulator, control_path)
    try:
        await server.start()
        print(
            f"kasify-sim keypad: {link_path} -> {emulator.tty}, control socket {control_path}",
            flush=True,
        )
        await stop.wait()
    finally:
        await server.stop()
        await emulator.stop()
