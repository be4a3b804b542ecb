"""The emulated UniFi Access controller's state: doors, visitors and their PINs, logs, tokens.

No HTTP here (that is `app.py`): methods return JSON-ready dicts and raise `Refusal` with the
controller's error code. Door timing (relay back to lock, door opening and closing after an
entry) runs on asyncio timers; every change is announced to the notification listeners.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

Json = dict[str, Any]

ALL_SCOPES: Final = frozenset(
    f"{verb}:{thing}"
    for verb in ("view", "edit")
    for thing in ("space", "device", "visitor", "credential", "system_log", "user", "webhook")
)
PIN_MIN, PIN_MAX = 4, 8  # the console's default PIN length limits
VISITOR_STATUS_CODES: Final = {
    1: "UPCOMING",
    2: "VISITED",
    3: "VISITING",
    4: "CANCELED",
    5: "NO_VISIT",
    6: "ACTIVE",
}
OPEN_AFTER_S: Final = 0.2  # a guest pushes the door this long after the relay releases
MAX_LOGS: Final = 10_000


class Refusal(Exception):
    """The controller refuses a request: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(f"{status} {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg


@dataclass
class EmuDoor:
    """A door with its hub, relay and (maybe) position sensor."""

    id: str
    name: str
    floor_id: str
    hub_id: str
    is_bind_hub: bool = True
    relay: str = "lock"
    position: str | None = "close"  # None: no sensor ("" on REST)
    omit_position: bool = False  # quirk: this hub leaves the field out entirely
    lock_rules: bool = True  # False: the hub answers 404 to lock rules
    rule: str = ""
    rule_ends: int = 0
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def rest(self) -> Json:
        """`GET /doors` form."""
        body: Json = {
            "id": self.id,
            "name": self.name,
            "full_name": f"Emulated Site - 1F - {self.name}",
            "floor_id": self.floor_id,
            "type": "door",
            "is_bind_hub": self.is_bind_hub,
            "door_lock_relay_status": self.relay,
        }
        if not self.omit_position:
            body["door_position_status"] = self.position if self.position is not None else ""
        return body


@dataclass
class EmuVisitor:
    """A visitor and its PIN."""

    id: str
    first_name: str
    last_name: str
    start_time: int
    end_time: int
    remarks: str = ""
    visit_reason: str = "Others"
    resources: list[Json] = field(default_factory=list)
    pin: str | None = None
    canceled: bool = False
    week_schedule: Json | None = None

    def status(self, now: float) -> str:
        """The status the controller reports."""
        if self.canceled:
            return "CANCELED"
        if now < self.start_time:
            return "UPCOMING"
        if now < self.end_time:
            return "ACTIVE"
        return "VISITED"

    def rest(self, now: float) -> Json:
        """API form (the PIN only as a token, as on the real controller)."""
        body: Json = {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "remarks": self.remarks,
            "mobile_phone": "",
            "email": "",
            "visitor_company": "",
            "visit_reason": self.visit_reason,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "status": self.status(now),
            "resources": self.resources,
            "nfc_cards": [],
            "schedule_id": self.id if self.week_schedule is not None else "",
            "schedule": (
                {
                    "id": self.id,
                    "name": f"visitor-{self.id[:8]}",
                    "type": "access",
                    "is_default": False,
                    "weekly": self.week_schedule,
                }
                if self.week_schedule is not None
                else None
            ),
        }
        if self.pin is not None:
            body["pin_code"] = {"token": secrets.token_hex(16)}
        return body


@dataclass
class Token:
    """An API token and its scopes."""

    value: str
    scopes: frozenset[str] = ALL_SCOPES
    expired: bool = False


class Controller:
    """Doors, visitors, logs and tokens of one emulated console."""

    def __init__(
        self,
        doors: int = 2,
        *,
        unlock_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        token: str | None = None,
    ) -> None:
        self.clock = clock
        self.unlock_s = unlock_s
        self.building_id = str(uuid.uuid4())
        self.floor_id = str(uuid.uuid4())
        self.doors: dict[str, EmuDoor] = {}
        for index in range(1, doors + 1):
            door = EmuDoor(str(uuid.uuid4()), f"Door {index}", self.floor_id, secrets.token_hex(6))
            self.doors[door.id] = door
        self.visitors: dict[str, EmuVisitor] = {}
        self.user_pins: dict[str, str] = {}  # PINs held by controller users: pin -> user name
        self.logs: list[Json] = []  # newest last
        self.tokens: dict[str, Token] = {}
        self.token = self.add_token(token).value
        self.hub_ids_in_logs = False  # quirk of Access >= 3.4
        self.listeners: set[Callable[[Json], None]] = set()

    # --- identity kept across restarts (a real console keeps its doors and token) ----------

    def identity(self) -> Json:
        """What a restarted console keeps: token, building, floor and doors."""
        return {
            "token": self.token,
            "building_id": self.building_id,
            "floor_id": self.floor_id,
            "doors": [
                {"id": d.id, "name": d.name, "hub_id": d.hub_id} for d in self.doors.values()
            ],
        }

    def restore(self, identity: Json) -> None:
        """Take back a saved identity (doors keep their ids, names and hubs)."""
        self.building_id = str(identity["building_id"])
        self.floor_id = str(identity["floor_id"])
        self.doors = {}
        for saved in identity["doors"]:
            door = EmuDoor(
                str(saved["id"]), str(saved["name"]), self.floor_id, str(saved["hub_id"])
            )
            self.doors[door.id] = door
        self.tokens = {}
        self.token = self.add_token(str(identity["token"])).value

    # --- tokens ------------------------------------------------------------------------

    def add_token(self, value: str | None = None, scopes: frozenset[str] = ALL_SCOPES) -> Token:
        """Register a token."""
        token = Token(value or secrets.token_urlsafe(16), frozenset(scopes))
        self.tokens[token.value] = token
        return token

    def authorize(self, header: str | None, scope: str) -> None:
        """Check the Authorization header for a scope; raise the controller's refusal."""
        value = (header or "").removeprefix("Bearer ").strip()
        token = self.tokens.get(value)
        if token is None:
            raise Refusal(401, "CODE_ACCESS_TOKEN_INVALID", "The provided access token is invalid.")
        if token.expired:
            raise Refusal(401, "CODE_ACCESS_TOKEN_INVALID", "The access token has expired.")
        if scope not in token.scopes:
            raise Refusal(403, "CODE_UNAUTHORIZED", "You are not allowed to perform this action.")

    # --- doors --------------------------------------------------------------------------

    def door(self, ref: str) -> EmuDoor:
        """A door by id, name or 1-based number."""
        if ref in self.doors:
            return self.doors[ref]
        for number, door in enumerate(self.doors.values(), start=1):
            if ref in (door.name, str(number)):
                return door
        raise Refusal(404, "CODE_RESOURCE_NOT_FOUND", f"door {ref} not found")

    def topology(self) -> list[Json]:
        """`GET /door_groups/topology`: a building with one floor, and a group repeating it."""
        resources = [
            {"id": d.id, "name": d.name, "type": "door", "is_bind_hub": d.is_bind_hub}
            for d in self.doors.values()
        ]
        floor = {"id": self.floor_id, "name": "1F", "type": "floor", "resources": resources}
        return [
            {
                "id": self.building_id,
                "name": "Emulated Site",
                "type": "building",
                "resource_topologies": [floor],
            },
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.building_id)),
                "name": "customized group",
                "type": "access",
                "resource_topologies": [floor],
            },
        ]

    def devices(self) -> list[list[Json]]:
        """`GET /devices`: hubs, as a list of lists like real controllers answer."""
        return [
            [
                {
                    "id": d.hub_id,
                    "name": f"UA-HUB-{d.hub_id[-4:].upper()}",
                    "alias": f"Hub of {d.name}",
                    "type": "UAH",
                    "location_id": d.id,
                }
                for d in self.doors.values()
            ]
        ]

    def remote_unlock(self, ref: str, actor_id: str = "", actor_name: str = "") -> None:
        """Unlock as the API's `PUT /doors/{id}/unlock` or an admin in the console does."""
        door = self.door(ref)
        if not door.is_bind_hub:
            raise Refusal(200, "CODE_DEVICE_DEVICE_OFFLINE", "no hub bound to this door")
        if door.rule == "keep_lock":
            raise Refusal(200, "CODE_OPERATION_FORBIDDEN", "the door is kept locked by a rule")
        self._notify(
            "access.data.device.remote_unlock",
            door.id,
            {"unique_id": door.id, "name": door.name, "up_id": door.hub_id},
        )
        actor = {
            "id": actor_id,
            "type": "user" if actor_id else "admin",
            "display_name": actor_name or "Admin",
        }
        self._log(door, "REMOTE_THROUGH_UAH", "ACCESS", "Access Granted (Remote)", actor)
        self._open_sequence(door)

    def set_position(self, ref: str, is_open: bool) -> None:
        """Move the door (someone opened or closed it)."""
        door = self.door(ref)
        if door.position is None:
            raise Refusal(400, "CODE_PARAMS_INVALID", f"{door.name} has no position sensor")
        door.position = "open" if is_open else "close"
        self._location(door)

    def set_rule(self, ref: str, rule: str, interval: int | None) -> None:
        """`PUT /doors/{id}/lock_rule`."""
        door = self.door(ref)
        if not door.lock_rules:
            raise Refusal(404, "CODE_RESOURCE_NOT_FOUND", "lock rules are not supported here")
        now = int(self.clock())
        if rule in ("keep_lock", "keep_unlock"):
            door.rule, door.rule_ends = rule, 0
        elif rule == "custom":
            if not interval or interval <= 0:
                raise Refusal(200, "CODE_PARAMS_INVALID", "custom needs an interval in minutes")
            door.rule, door.rule_ends = "custom", now + 60 * interval
        elif rule in ("reset", "lock_early", "lock_now"):
            door.rule, door.rule_ends = "", 0
        else:
            raise Refusal(200, "CODE_PARAMS_INVALID", f"unknown lock rule type {rule!r}")
        self._cancel_timers(door)
        door.relay = "unlock" if door.rule in ("keep_unlock", "custom") else "lock"
        self._location(door)

    def rule_of(self, ref: str) -> Json:
        """`GET /doors/{id}/lock_rule`."""
        door = self.door(ref)
        if not door.lock_rules:
            raise Refusal(404, "CODE_RESOURCE_NOT_FOUND", "lock rules are not supported here")
        return {"type": door.rule, "ended_time": door.rule_ends}

    # --- visitors -----------------------------------------------------------------------

    def create_visitor(self, body: Json) -> EmuVisitor:
        """`POST /visitors`."""
        for key in ("first_name", "last_name", "start_time", "end_time", "visit_reason"):
            if body.get(key) in (None, ""):
                raise Refusal(200, "CODE_PARAMS_INVALID", f"{key} is required")
        visitor = EmuVisitor(
            id=str(uuid.uuid4()), first_name="", last_name="", start_time=0, end_time=0
        )
        self._apply(visitor, body)
        self.visitors[visitor.id] = visitor
        return visitor

    def update_visitor(self, visitor_id: str, body: Json) -> EmuVisitor:
        """`PUT /visitors/{id}`: only the fields given change."""
        visitor = self.visitor(visitor_id)
        self._apply(visitor, body)
        return visitor

    def _apply(self, visitor: EmuVisitor, body: Json) -> None:
        for key in ("first_name", "last_name", "remarks", "visit_reason"):
            if isinstance(body.get(key), str):
                setattr(visitor, key, body[key])
        for key in ("start_time", "end_time"):
            if body.get(key) is not None:
                try:
                    setattr(visitor, key, int(body[key]))
                except (TypeError, ValueError):
                    raise Refusal(200, "CODE_PARAMS_INVALID", f"{key} must be seconds") from None
        if isinstance(body.get("week_schedule"), dict):
            visitor.week_schedule = body["week_schedule"]
        if visitor.end_time <= visitor.start_time:
            raise Refusal(200, "CODE_PARAMS_INVALID", "end_time must be after start_time")
        if body.get("resources") is not None:
            resources = []
            for item in body["resources"]:
                if not isinstance(item, dict) or item.get("type") not in ("door", "door_group"):
                    raise Refusal(200, "CODE_PARAMS_INVALID", "resources are doors or groups")
                if item["type"] == "door" and item.get("id") not in self.doors:
                    raise Refusal(200, "CODE_PARAMS_INVALID", f"no door {item.get('id')}")
                name = self.doors[item["id"]].name if item["type"] == "door" else "group"
                resources.append({"id": item["id"], "type": item["type"], "name": name})
            visitor.resources = resources

    def visitor(self, visitor_id: str) -> EmuVisitor:
        """One visitor."""
        visitor = self.visitors.get(visitor_id)
        if visitor is None:
            raise Refusal(404, "CODE_RESOURCE_NOT_FOUND", f"visitor {visitor_id} not found")
        return visitor

    def delete_visitor(self, visitor_id: str, force: bool) -> None:
        """`DELETE /visitors/{id}`: gone with is_force, otherwise only canceled."""
        visitor = self.visitor(visitor_id)
        if force:
            del self.visitors[visitor_id]
        else:
            visitor.canceled = True

    def assign_pin(self, visitor_id: str, pin: Any) -> None:
        """`PUT /visitors/{id}/pin_codes`: unique across the controller."""
        visitor = self.visitor(visitor_id)
        if not isinstance(pin, str) or not pin.isdigit():
            raise Refusal(200, "CODE_PARAMS_INVALID", "pin_code must be digits")
        if not PIN_MIN <= len(pin) <= PIN_MAX:
            raise Refusal(
                200,
                "CODE_CREDS_PIN_CODE_CREDS_LENGTH_INVALID",
                f"PIN length must be {PIN_MIN}-{PIN_MAX}",
            )
        if self.pin_holder(pin) not in (None, visitor):
            raise Refusal(200, "CODE_CREDS_PIN_CODE_CREDS_ALREADY_EXIST", "PIN already exists")
        visitor.pin = pin

    def pin_holder(self, pin: str) -> EmuVisitor | str | None:
        """The visitor (or user name) holding a PIN."""
        if pin in self.user_pins:
            return self.user_pins[pin]
        for visitor in self.visitors.values():
            if visitor.pin == pin:
                return visitor
        return None

    def generate_pin(self) -> str:
        """`POST /credentials/pin_codes`: a free PIN."""
        while True:
            pin = "".join(secrets.choice("0123456789") for _ in range(6))
            if self.pin_holder(pin) is None:
                return pin

    # --- a guest at a reader ------------------------------------------------------------

    def type_pin(self, ref: str, pin: str) -> Json:
        """Someone types a PIN at the door's reader: the controller decides and logs."""
        door = self.door(ref)
        now = self.clock()
        holder = self.pin_holder(pin)
        actor: Json = {"id": "", "type": "user", "display_name": "N/A"}
        granted, message = False, "Access Denied / Unknown (PIN)"
        if isinstance(holder, EmuVisitor):
            actor = {
                "id": holder.id,
                "type": "visitor",
                "display_name": f"{holder.first_name} {holder.last_name}".strip(),
            }
            if holder.canceled or not holder.start_time <= now < holder.end_time:
                message = "Access Denied / Outside Schedule (PIN)"
            elif not self._opens(holder, door):
                message = "Access Denied / No Access (PIN)"
            else:
                granted, message = True, "Access Granted (PIN)"
        elif isinstance(holder, str):
            actor = {"id": f"user-{pin}", "type": "user", "display_name": holder}
            granted, message = True, "Access Granted (PIN)"
        if granted and door.rule == "keep_lock":
            granted, message = False, "Access Denied / Door Locked (PIN)"
        hit = self._log(door, "PIN_CODE", "ACCESS" if granted else "BLOCKED", message, actor)
        if granted:
            self._open_sequence(door)
        return {
            "result": "granted" if granted else "denied",
            "log_id": hit["_id"],
            "door_id": door.id,
            "actor_id": actor["id"],
            "message": message,
        }

    def _opens(self, visitor: EmuVisitor, door: EmuDoor) -> bool:
        groups = {self.building_id, self.floor_id}
        return any(
            (r["type"] == "door" and r["id"] == door.id)
            or (r["type"] == "door_group" and r["id"] in groups)
            for r in visitor.resources
        )

    def _open_sequence(self, door: EmuDoor) -> None:
        """Relay releases; the door opens and closes again; the relay locks after unlock_s."""
        self._cancel_timers(door)
        door.relay = "unlock"
        self._location(door)
        if door.rule in ("keep_unlock", "custom"):
            return
        loop = asyncio.get_running_loop()
        if door.position is not None:
            door.timers.append(loop.call_later(OPEN_AFTER_S, self._move, door, "open"))
            door.timers.append(loop.call_later(self.unlock_s * 0.8, self._move, door, "close"))
        door.timers.append(loop.call_later(self.unlock_s, self._relock, door))

    def _move(self, door: EmuDoor, position: str) -> None:
        if door.position is not None:
            door.position = position
            self._location(door)

    def _relock(self, door: EmuDoor) -> None:
        door.timers.clear()
        door.relay = "lock"
        self._location(door)

    def _cancel_timers(self, door: EmuDoor) -> None:
        for timer in door.timers:
            timer.cancel()
        door.timers.clear()

    # --- logs and notifications ---------------------------------------------------------

    def _log(self, door: EmuDoor, provider: str, result: str, message: str, actor: Json) -> Json:
        now = self.clock()
        door_target_id = door.hub_id if self.hub_ids_in_logs else door.id
        hub_name = f"UA-HUB-{door.hub_id[-4:].upper()}"
        hit: Json = {
            "@timestamp": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "_id": str(uuid.uuid4()),
            "_source": {
                "actor": {**actor, "alternate_id": "", "alternate_name": ""},
                "authentication": {"credential_provider": provider, "issuer": ""},
                "event": {
                    "type": "access.door.unlock",
                    "display_message": message,
                    "result": result,
                    "published": int(now * 1000),
                    "reason": "",
                },
                "target": [
                    {"type": "UAH", "id": door.hub_id, "display_name": hub_name},
                    {"type": "device_config", "id": "door_entry_method", "display_name": "entry"},
                    {"type": "door", "id": door_target_id, "display_name": door.name},
                    {"type": "floor", "id": door.floor_id, "display_name": "1F"},
                    {"type": "building", "id": self.building_id, "display_name": "Emulated Site"},
                ],
            },
            "tag": "access",
        }
        self.logs.append(hit)
        del self.logs[:-MAX_LOGS]
        self._notify("access.logs.add", hit["_id"], hit)
        return hit

    def query_logs(self, since: int | None, until: int | None) -> list[Json]:
        """Door-opening entries in [since, until], newest first."""
        found = []
        for hit in reversed(self.logs):
            at = hit["_source"]["event"]["published"] / 1000
            if (since is None or at >= since) and (until is None or at <= until):
                found.append(hit)
        return found

    def _location(self, door: EmuDoor) -> None:
        state: Json = {"lock": "locked" if door.relay == "lock" else "unlocked"}
        if not door.omit_position:
            state["dps"] = door.position if door.position is not None else "none"
        self._notify(
            "access.data.v2.location.update",
            door.id,
            {"id": door.id, "location_type": "door", "name": door.name, "state": state},
        )

    def _notify(self, event: str, object_id: str, data: Json) -> None:
        message = {
            "event": event,
            "receiver_id": "",
            "event_object_id": object_id,
            "save_to_history": event == "access.logs.add",
            "data": data,
        }
        for listener in list(self.listeners):
            listener(message)

    def status(self) -> Json:
        """A JSON summary for the control socket."""
        now = self.clock()
        return {
            "doors": [
                {"number": i, **d.rest(), "hub_id": d.hub_id, "rule": d.rule}
                for i, d in enumerate(self.doors.values(), start=1)
            ],
            "visitors": len(self.visitors),
            "visitors_with_pin": sum(1 for v in self.visitors.values() if v.pin),
            "active_visitors": sum(1 for v in self.visitors.values() if v.status(now) == "ACTIVE"),
            "logs": len(self.logs),
            "hub_ids_in_logs": self.hub_ids_in_logs,
        }
