"""The emulated lock's control socket (JSON lines on a Unix socket) and a client for it.

Each request is one JSON object on a line with "cmd"; each answer one JSON object with "ok" (and
"error" when false). Commands:
  status                                      -> lock, link, codes, faults (no PINs of codes)
  pairing   {"on": true, "seconds": 60}       enter (or leave) pairing mode, like a 5 s press
  keypad    {"code": "345678"}                type on the Nuki Keypad
                                              -> {"result": granted|denied|busy, "code_id", "name"}
  door      {"open": true}                    the door sensor
  turn      {"action": "lock"|"unlock"|"unlatch", "trigger": "manual"|"auto"}  by hand / auto-lock
  battery   {"percent": 15, "critical": null} drain or replace the batteries
  motor     {"seconds": 2.0, "push_interval": 1.0}
  pin       {"pin": 1234}                     the security PIN
  capacity  {"codes": 100}                    keypad codes the lock holds
  codes                                       -> {"codes": [{code_id, name, enabled, window}]}
  log       {"count": 20}                     -> {"entries": [...newest first]}
  fault     {"kind": K, "count": N, "seconds": S} with K one of busy, motor_blocked,
            drop_on_command, drop_after_accept, silence, corrupt, truncate, replay, delay,
            disconnect, clear
  watch                                       -> {"ok"} then one event per line (connected,
                                              disconnected, write, fault, state …)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from agent.locks.nuki.adverts import format_nuki_id
from agent.locks.nuki.const import Action, LockState, Trigger
from agent.locks.nuki.messages import KeyturnerStates
from simulator.control import ControlClient, ControlServer, Json
from simulator.nuki.peripheral import NukiPeripheral

WATCH_QUEUE_LIMIT: Final = 1024
MAX_FAULT_COUNT: Final = 10_000
LOCK_FAULTS: Final = ("busy", "motor_blocked", "drop_on_command", "drop_after_accept", "silence")
FRAME_FAULTS: Final = ("corrupt", "truncate", "replay")
ACTIONS: Final = {"lock": Action.LOCK, "unlock": Action.UNLOCK, "unlatch": Action.UNLATCH}


def lock_status(peripheral: NukiPeripheral) -> Json:
    """The emulator's state as a JSON-ready dict."""
    lock, world = peripheral.lock, peripheral.lock.world
    now = peripheral.clock()
    states = world.states(now)
    return {
        "nuki_id": format_nuki_id(world.nuki_id),
        "name": world.name,
        "connected": peripheral.connection is not None,
        "connections": peripheral.connections,
        "pairing_mode": world.pairing_mode(now),
        "lock_state": states.lock_state.name.lower(),
        "door": states.door_sensor.name.lower(),
        "battery_percent": states.battery_percent,
        "battery_critical": states.battery_critical,
        "state_changed": world.state_changed,
        "lock_time": states.current_time.isoformat() if states.current_time else None,
        "motor_s": world.motor_s,
        "authorizations": [
            {"auth_id": a.auth_id, "id_type": a.id_type.name.lower(), "name": a.name}
            for a in world.authorizations.values()
        ],
        "codes": len(world.codes),
        "capacity": world.capacity,
        "log_entries": len(world.log),
        "frames_sent": peripheral.frames_sent,
        "pin_locked_out": now < lock.locked_out_until,
        "faults": {**vars(lock.faults), **vars(peripheral.faults)},
    }


class NukiControlServer(ControlServer):
    """Serves the control protocol for one emulated lock."""

    def __init__(self, peripheral: NukiPeripheral, socket_path: str) -> None:
        super().__init__(socket_path)
        self.peripheral = peripheral

    async def handle(self, request: Json) -> Json:
        """Execute one request and return its answer."""
        peripheral = self.peripheral
        world, now = peripheral.lock.world, peripheral.clock()
        cmd = request.get("cmd")
        answer: Json = {"ok": True}
        if cmd == "status":
            return {"ok": True, **lock_status(peripheral)}
        if cmd == "pairing":
            on = bool(request.get("on", True))
            world.pairing_until = now + float(request.get("seconds", 60.0)) if on else 0.0
        elif cmd == "keypad":
            result, code = world.keypad_entry(str(request["code"]), now)
            answer.update(result=result, code_id=code.code_id if code else None)
            answer["name"] = code.name if code else None
            peripheral.publish({"kind": "keypad", "result": result})
        elif cmd == "door":
            world.set_door(bool(request["open"]), now)
        elif cmd == "turn":
            trigger = Trigger.AUTO_LOCK if request.get("trigger") == "auto" else Trigger.MANUAL
            answer["started"] = world.manual(ACTIONS[str(request["action"])], now, trigger)
        elif cmd == "battery":
            critical = request.get("critical")
            world.set_battery(
                float(request["percent"]), None if critical is None else bool(critical)
            )
        elif cmd == "motor":
            world.motor_s = max(0.0, float(request["seconds"]))
            world.push_interval_s = max(
                0.0, float(request.get("push_interval", world.push_interval_s))
            )
        elif cmd == "pin":
            world.security_pin = int(request["pin"])
        elif cmd == "capacity":
            world.capacity = max(0, int(request["codes"]))
        elif cmd == "codes":
            answer["codes"] = [
                {"code_id": c.code_id, "name": c.name, "enabled": c.enabled,
                 "time_limited": c.window.time_limited, "lock_count": c.lock_count}
                for c in sorted(world.codes.values(), key=lambda c: c.code_id)
            ]  # fmt: skip
        elif cmd == "log":
            count = int(request.get("count", 20))
            answer["entries"] = [
                {"index": e.index, "type": e.type.name.lower(), "auth_id": e.auth_id,
                 "name": e.name, "data": e.data.hex()}
                for e in sorted(world.log, key=lambda e: -e.index)[:count]
            ]  # fmt: skip
        elif cmd == "fault":
            await self._fault(request)
        elif cmd == "lock_state":
            world.lock_state = LockState[str(request["state"]).upper()]
        else:
            raise ValueError(f"unknown cmd {cmd!r}")
        peripheral.wake()
        return answer

    async def _fault(self, request: Json) -> None:
        peripheral = self.peripheral
        kind = str(request["kind"])
        count = int(request.get("count", 1))
        if not 0 <= count <= MAX_FAULT_COUNT:
            raise ValueError(f"count must be 0..{MAX_FAULT_COUNT}")
        if kind in LOCK_FAULTS:
            setattr(peripheral.lock.faults, kind, count)
        elif kind in FRAME_FAULTS:
            setattr(peripheral.faults, kind, count)
        elif kind == "delay":
            peripheral.faults.delay_s = max(0.0, float(request.get("seconds", 1.0)))
        elif kind == "disconnect":
            await peripheral.disconnect("fault: disconnect")
        elif kind == "clear":
            peripheral.lock.faults = type(peripheral.lock.faults)()
            peripheral.faults = type(peripheral.faults)()
        else:
            raise ValueError(f"unknown fault {kind!r}")

    async def watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[Json] = asyncio.Queue(maxsize=WATCH_QUEUE_LIMIT)

        def listener(event: Json) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

        self.peripheral.listeners.add(listener)
        world = self.peripheral.lock.world
        previous = world.on_states

        def on_states(states: KeyturnerStates) -> None:
            listener({"kind": "state", "lock_state": states.lock_state.name.lower()})
            if previous is not None:
                previous(states)

        world.on_states = on_states
        writer.write(b'{"ok": true}\n')
        await writer.drain()
        eof = asyncio.ensure_future(reader.read())
        try:
            while not eof.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, eof}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                writer.write(json.dumps(getter.result()).encode() + b"\n")
                await writer.drain()
        finally:
            world.on_states = previous
            self.peripheral.listeners.discard(listener)
            eof.cancel()


class NukiControl(ControlClient):
    """Client of an emulated lock's control socket."""

    async def command(self, cmd: str, **params: Any) -> Json:
        """Send one command with its parameters; return the answer or raise RuntimeError."""
        return await self.request({"cmd": cmd, **params})

    async def pairing(self, on: bool = True, seconds: float = 60.0) -> None:
        """Put the lock into (or out of) pairing mode."""
        await self.command("pairing", on=on, seconds=seconds)

    async def keypad(self, code: str) -> Json:
        """Type a code on the Nuki Keypad."""
        return await self.command("keypad", code=code)

    async def fault(self, kind: str, count: int = 1, **params: Any) -> None:
        """Inject a fault."""
        await self.command("fault", kind=kind, count=count, **params)
