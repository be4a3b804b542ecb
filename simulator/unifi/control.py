"""Control socket of the UniFi emulator (JSON lines on a Unix socket) and a client for it.

Each request is one JSON object on one line with "cmd"; each answer one JSON object with "ok"
(and "error" when false). Commands:
  status                                   -> {"ok", "url", "fingerprint", "doors", "requests", ...}
  type-pin  {"door": D, "pin": "123456"}   -> {"ok", "result": granted|denied, "log_id", ...}
            D is a door id, its name or its number (1-based)
  door      {"door": D, "open": true}      move the door (position sensor)
  unlock    {"door": D, "actor": "Admin"}  an admin unlocks in the UniFi console
  reserve-pin {"pin": "1234", "user": "Staff"}  a controller user holds this PIN
  visitors                                 -> {"ok", "visitors": [{id, name, pin, status, ...}]}
  token     {"scopes": [...], "value": T}  -> {"ok", "token"}: add a token with these scopes
  expire    {"token": T}                   the token is refused from now on (401)
  quirk     {"hub_ids_in_logs": true}      log entries name the hub instead of the door
  fault     {"kind": "http", "status": 503, "count": 1, "path": "/visitors"}
            {"kind": "slow", "seconds": 2.0, "count": 3}      (count omitted: until cleared)
            {"kind": "ws-drop"}                      close every notifications link (1011)
            {"kind": "ws-refuse", "on": true}        drop them and refuse new ones (HTTP 503)
            {"kind": "ws-silence", "on": true}       keep links open but send nothing
            {"kind": "clear"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.control import ControlClient as BaseControlClient
from simulator.control import ControlServer as BaseControlServer
from simulator.control import Json
from simulator.unifi.app import HttpFault
from simulator.unifi.controller import ALL_SCOPES, Refusal

if TYPE_CHECKING:
    from simulator.unifi.server import UnifiEmulator

MAX_FAULT_COUNT = 10_000


class ControlServer(BaseControlServer):
    """Serves the control protocol for one emulator."""

    refusals = (Refusal, ValueError, KeyError, TypeError)

    def __init__(self, emulator: UnifiEmulator, socket_path: str) -> None:
        super().__init__(socket_path)
        self.emulator = emulator

    def error_text(self, exc: Exception) -> str:
        """The controller's own message for its refusals."""
        return exc.msg if isinstance(exc, Refusal) else str(exc)

    async def handle(self, request: Json) -> Json:
        """Execute one request."""
        return self.execute(request)

    def execute(self, request: Json) -> Json:
        """Execute one request."""
        emu = self.emulator
        ctl = emu.controller
        cmd = request.get("cmd")
        if cmd == "status":
            return {
                "ok": True,
                **emu.info(),
                **ctl.status(),
                "requests": emu.app.requests,
                "websockets": len(emu.app.sessions),
                "websocket_connects": emu.app.websocket_connects,
            }
        if cmd == "type-pin":
            pin = str(request["pin"])
            if not pin.isdigit():
                raise ValueError(f"a PIN is digits, not {pin!r}")
            return {"ok": True, **ctl.type_pin(str(request["door"]), pin)}
        if cmd == "door":
            ctl.set_position(str(request["door"]), bool(request["open"]))
        elif cmd == "unlock":
            ctl.remote_unlock(str(request["door"]), "", str(request.get("actor") or "Admin"))
        elif cmd == "reserve-pin":
            ctl.user_pins[str(request["pin"])] = str(request.get("user") or "Controller user")
        elif cmd == "visitors":
            now = ctl.clock()
            return {
                "ok": True,
                "visitors": [
                    {
                        "id": v.id,
                        "name": f"{v.first_name} {v.last_name}",
                        "pin": v.pin,
                        "status": v.status(now),
                        "start_time": v.start_time,
                        "end_time": v.end_time,
                        "doors": [r["id"] for r in v.resources],
                        "remarks": v.remarks,
                    }
                    for v in ctl.visitors.values()
                ],
            }
        elif cmd == "token":
            scopes = request.get("scopes")
            chosen = frozenset(str(s) for s in scopes) if scopes is not None else ALL_SCOPES
            return {"ok": True, "token": ctl.add_token(request.get("value"), chosen).value}
        elif cmd == "expire":
            ctl.tokens[str(request["token"])].expired = True
        elif cmd == "quirk":
            ctl.hub_ids_in_logs = bool(request.get("hub_ids_in_logs", True))
        elif cmd == "fault":
            return self._fault(request)
        else:
            raise ValueError(f"unknown command {cmd!r}")
        return {"ok": True}

    def _fault(self, request: Json) -> Json:
        app = self.emulator.app
        faults = app.faults
        kind = request.get("kind")
        count = int(request.get("count", 1))
        if not 0 <= count <= MAX_FAULT_COUNT:
            raise ValueError(f"count must be 0..{MAX_FAULT_COUNT}")
        if kind == "http":
            status = int(request["status"])
            if not 400 <= status <= 599:
                raise ValueError("status must be 4xx or 5xx")
            faults.http.append(HttpFault(status, count, str(request.get("path", ""))))
        elif kind == "slow":
            faults.slow_s = float(request["seconds"])
            faults.slow_remaining = int(request["count"]) if "count" in request else None
        elif kind == "ws-drop":
            return {"ok": True, "dropped": app.drop_websockets()}
        elif kind == "ws-refuse":
            faults.ws_refuse = bool(request.get("on", True))
            if faults.ws_refuse:
                app.drop_websockets()
        elif kind == "ws-silence":
            faults.ws_silent = bool(request.get("on", True))
        elif kind == "clear":
            faults.clear()
        else:
            raise ValueError(f"unknown fault {kind!r}")
        return {"ok": True}


class ControlClient(BaseControlClient):
    """Client of an emulator's control socket."""

    async def type_pin(self, door: str, pin: str) -> Json:
        """Type a PIN at a door's reader."""
        return await self.request({"cmd": "type-pin", "door": door, "pin": pin})
