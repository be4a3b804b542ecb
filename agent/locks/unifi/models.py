"""What the controller tells us, as frozen dataclasses, parsed leniently from its JSON.

Real controllers add fields, send null where a string belongs, leave fields out (the door
position on some hubs) and mix spellings ("lock" on REST, "locked" on the WebSocket). Wire models
ignore what they do not know, turn nulls into defaults and never raise on an unknown enum value;
an item that cannot be read at all is skipped, not the whole list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)


def as_text(value: Any) -> str:
    """A string from whatever the controller sent (null becomes "")."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def as_int(value: Any) -> int | None:
    """An integer from a number or numeric string; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool | None:
    """A boolean from a bool, "true"/"1" or a number; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int | float):
        return bool(value)
    return None


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


Text = Annotated[str, BeforeValidator(as_text)]
OptInt = Annotated[int | None, BeforeValidator(as_int)]
OptBool = Annotated[bool | None, BeforeValidator(as_bool)]
Obj = Annotated[dict[str, Any], BeforeValidator(as_dict)]
Items = Annotated[list[Any], BeforeValidator(as_list)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- enums that never raise ----------------------------------------------------------------


class Relay(StrEnum):
    """The door's lock relay ("lock"/"unlock" on REST, "locked"/"unlocked" on the WebSocket)."""

    LOCK = "lock"
    UNLOCK = "unlock"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: Any) -> Relay:
        """Any spelling the controller uses; UNKNOWN otherwise."""
        text = as_text(value).strip().lower()
        if text in ("lock", "locked"):
            return cls.LOCK
        if text in ("unlock", "unlocked"):
            return cls.UNLOCK
        return cls.UNKNOWN


class Position(StrEnum):
    """The door position sensor; NONE when the door has none ("", null or "none")."""

    OPEN = "open"
    CLOSE = "close"
    NONE = "none"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: Any) -> Position:
        """Any spelling the controller uses; UNKNOWN for a value we do not know."""
        text = as_text(value).strip().lower()
        if text == "open":
            return cls.OPEN
        if text in ("close", "closed"):
            return cls.CLOSE
        if text in ("", "none", "null"):
            return cls.NONE
        return cls.UNKNOWN


class VisitorStatus(StrEnum):
    """A visitor's status as the controller reports it (strings, although filters take ints)."""

    UPCOMING = "UPCOMING"
    VISITED = "VISITED"
    VISITING = "VISITING"
    CANCELED = "CANCELED"
    NO_VISIT = "NO_VISIT"
    ACTIVE = "ACTIVE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> VisitorStatus:
        """The status; UNKNOWN for anything new."""
        text = as_text(value).strip().upper().replace("CANCELLED", "CANCELED")
        return cls._value2member_map_.get(text, cls.UNKNOWN)  # type: ignore[return-value]


class LockRuleType(StrEnum):
    """Temporary lock rules a door may carry."""

    KEEP_LOCK = "keep_lock"
    KEEP_UNLOCK = "keep_unlock"
    CUSTOM = "custom"
    RESET = "reset"
    LOCK_EARLY = "lock_early"
    LOCK_NOW = "lock_now"
    SCHEDULE = "schedule"
    NONE = ""
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: Any) -> LockRuleType:
        """The rule type; UNKNOWN for anything new."""
        return cls._value2member_map_.get(as_text(value).strip().lower(), cls.UNKNOWN)  # type: ignore[return-value]


# --- doors ---------------------------------------------------------------------------------


class _DoorWire(_Wire):
    id: Text = ""
    name: Text = ""
    full_name: Text = ""
    floor_id: Text = ""
    is_bind_hub: OptBool = None
    door_lock_relay_status: Text = ""
    door_position_status: Text = ""


@dataclass(frozen=True, slots=True)
class Door:
    """A door as `GET /doors` describes it."""

    id: str
    name: str
    full_name: str = ""
    floor_id: str = ""
    is_bind_hub: bool = False
    relay: Relay = Relay.UNKNOWN
    position: Position = Position.NONE  # a field left out means no sensor reported


def parse_door(raw: Any) -> Door | None:
    """One door, or None when it has no id."""
    try:
        wire = _DoorWire.model_validate(raw)
    except ValidationError:
        return None
    if not wire.id:
        return None
    return Door(
        id=wire.id,
        name=wire.name or wire.full_name or wire.id,
        full_name=wire.full_name,
        floor_id=wire.floor_id,
        is_bind_hub=bool(wire.is_bind_hub),
        relay=Relay.parse(wire.door_lock_relay_status),
        position=Position.parse(wire.door_position_status),
    )


def parse_doors(raw: Any) -> tuple[Door, ...]:
    """Every readable door of a list."""
    return tuple(door for item in as_list(raw) if (door := parse_door(item)) is not None)


class _ResourceWire(_Wire):
    id: Text = ""
    name: Text = ""
    type: Text = ""
    is_bind_hub: OptBool = None


class _FloorWire(_Wire):
    id: Text = ""
    name: Text = ""
    type: Text = ""
    resources: Items = []


class _GroupWire(_Wire):
    id: Text = ""
    name: Text = ""
    type: Text = ""
    resource_topologies: Items = []


@dataclass(frozen=True, slots=True)
class TopologyDoor:
    """A door in the building/floor tree of `GET /door_groups/topology`."""

    door_id: str
    name: str
    floor_id: str
    floor_name: str = ""
    building_id: str = ""
    is_bind_hub: bool = False


def parse_topology(raw: Any) -> tuple[TopologyDoor, ...]:
    """Doors of every building, once each (custom door groups repeat doors; buildings win)."""
    groups: list[_GroupWire] = []
    for item in as_list(raw):
        try:
            groups.append(_GroupWire.model_validate(item))
        except ValidationError:
            continue
    groups.sort(key=lambda g: g.type != "building")
    doors: dict[str, TopologyDoor] = {}
    for group in groups:
        for floor in _models(_FloorWire, group.resource_topologies):
            for res in _models(_ResourceWire, floor.resources):
                if res.type not in ("door", "") or not res.id or res.id in doors:
                    continue
                doors[res.id] = TopologyDoor(
                    door_id=res.id,
                    name=res.name or res.id,
                    floor_id=floor.id,
                    floor_name=floor.name,
                    building_id=group.id,
                    is_bind_hub=bool(res.is_bind_hub),
                )
    return tuple(doors.values())


class _RuleWire(_Wire):
    type: Text = ""
    ended_time: OptInt = None


@dataclass(frozen=True, slots=True)
class LockRule:
    """The door's current temporary lock rule."""

    type: LockRuleType
    ended_time: int | None = None


def parse_lock_rule(raw: Any) -> LockRule:
    """The rule; an empty or odd answer is "no rule"."""
    try:
        wire = _RuleWire.model_validate(as_dict(raw))
    except ValidationError:
        return LockRule(LockRuleType.UNKNOWN)
    return LockRule(LockRuleType.parse(wire.type), wire.ended_time or None)


# --- devices (to resolve the hub id some log entries carry instead of the door id) ----------


class _DeviceWire(_Wire):
    id: Text = ""
    unique_id: Text = ""
    name: Text = ""
    alias: Text = ""
    type: Text = ""
    device_type: Text = ""
    location_id: Text = ""


@dataclass(frozen=True, slots=True)
class Device:
    """A hub, reader or other device, and the door (location) it serves."""

    id: str
    name: str
    type: str
    location_id: str


def parse_devices(raw: Any) -> tuple[Device, ...]:
    """Devices from `GET /devices`, whose data is a list of lists on real controllers."""
    devices = []
    for wire in _models(_DeviceWire, _flatten(raw)):
        ident = wire.id or wire.unique_id
        if ident:
            name = wire.alias or wire.name
            devices.append(Device(ident, name, wire.type or wire.device_type, wire.location_id))
    return tuple(devices)


def _flatten(raw: Any) -> Iterator[Any]:
    for item in as_list(raw):
        if isinstance(item, list):
            yield from item
        else:
            yield item


# --- visitors ------------------------------------------------------------------------------


class _VisitorWire(_Wire):
    id: Text = ""
    first_name: Text = ""
    last_name: Text = ""
    status: Text = ""
    remarks: Text = ""
    start_time: OptInt = None
    end_time: OptInt = None
    resources: Items = []
    pin_code: Any = None


@dataclass(frozen=True, slots=True)
class Resource:
    """A door or door group a visitor may open."""

    id: str
    type: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Visitor:
    """A visitor on the controller (how our codes reach its readers)."""

    id: str
    first_name: str
    last_name: str
    status: VisitorStatus
    start_time: int | None
    end_time: int | None
    remarks: str = ""
    resources: tuple[Resource, ...] = ()
    has_pin: bool = False

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()


def parse_visitor(raw: Any) -> Visitor | None:
    """One visitor, or None when it has no id."""
    try:
        wire = _VisitorWire.model_validate(raw)
    except ValidationError:
        return None
    if not wire.id:
        return None
    resources = tuple(
        Resource(r.id, r.type, r.name) for r in _models(_ResourceWire, wire.resources) if r.id
    )
    return Visitor(
        id=wire.id,
        first_name=wire.first_name,
        last_name=wire.last_name,
        status=VisitorStatus.parse(wire.status),
        start_time=wire.start_time,
        end_time=wire.end_time,
        remarks=wire.remarks,
        resources=resources,
        has_pin=bool(wire.pin_code),
    )


def parse_visitors(raw: Any) -> tuple[Visitor, ...]:
    """Every readable visitor of a list."""
    return tuple(v for item in as_list(raw) if (v := parse_visitor(item)) is not None)


# --- system logs and access.logs.add ---------------------------------------------------------


class _ActorWire(_Wire):
    id: Text = ""
    type: Text = ""
    display_name: Text = ""


class _AuthWire(_Wire):
    credential_provider: Text = ""


class _EventWire(_Wire):
    type: Text = ""
    result: Text = ""
    display_message: Text = ""
    published: OptInt = None


class _TargetWire(_Wire):
    type: Text = ""
    id: Text = ""
    display_name: Text = ""


class _SourceWire(_Wire):
    actor: Obj = {}
    authentication: Obj = {}
    event: Obj = {}
    target: Items = []


class _HitWire(_Wire):
    id: Text = Field(default="", alias="_id")
    timestamp: Text = Field(default="", alias="@timestamp")
    source: Obj = Field(default_factory=dict, alias="_source")


@dataclass(frozen=True, slots=True)
class Target:
    """Something a log entry is about: the door, its hub (UAH), floor, building, …."""

    type: str
    id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One system log entry (`POST /system/logs` hit or `access.logs.add` data)."""

    id: str
    at: float  # Unix seconds (event.published, else @timestamp)
    event_type: str
    result: str  # ACCESS | BLOCKED | …
    credential_provider: str  # PIN_CODE | NFC | REMOTE_THROUGH_UAH | …
    actor_id: str = ""
    actor_type: str = ""
    actor_name: str = ""
    display_message: str = ""
    targets: tuple[Target, ...] = field(default=())

    def targets_of(self, *types: str) -> tuple[Target, ...]:
        """Targets of these types (compared case-insensitively)."""
        wanted = {t.lower() for t in types}
        return tuple(t for t in self.targets if t.type.lower() in wanted)


def parse_log_entry(raw: Any) -> LogEntry | None:
    """One entry, or None when it carries no id (we could not deduplicate it)."""
    if not isinstance(raw, dict):
        return None
    try:
        hit = _HitWire.model_validate(raw)
        source = _SourceWire.model_validate(hit.source)
        actor = _ActorWire.model_validate(source.actor)
        auth = _AuthWire.model_validate(source.authentication)
        event = _EventWire.model_validate(source.event)
    except ValidationError:
        return None
    if not hit.id:
        return None
    at = event.published / 1000 if event.published else _iso_seconds(hit.timestamp)
    if at is None:
        return None
    targets = tuple(
        Target(t.type, t.id, t.display_name) for t in _models(_TargetWire, source.target)
    )
    return LogEntry(
        id=hit.id,
        at=at,
        event_type=event.type,
        result=event.result.upper(),
        credential_provider=auth.credential_provider.upper(),
        actor_id=actor.id,
        actor_type=actor.type,
        actor_name=actor.display_name,
        display_message=event.display_message,
        targets=targets,
    )


def _iso_seconds(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of `POST /system/logs`."""

    entries: tuple[LogEntry, ...]
    page: int
    total: int


def parse_log_page(data: Any, envelope: Mapping[str, Any]) -> LogPage:
    """Hits of a page; `page`/`total` sit inside data or beside it, depending on the version."""
    body = as_dict(data)
    hits = body.get("hits") if body else data
    entries = tuple(e for item in as_list(hits) if (e := parse_log_entry(item)) is not None)
    page = as_int(body.get("page", envelope.get("page"))) or 1
    total = as_int(body.get("total", envelope.get("total")))
    return LogPage(entries, page, total if total is not None else len(entries))


M = TypeVar("M", bound=BaseModel)


def _models(model: type[M], items: Iterable[Any]) -> Iterator[M]:
    for item in items:
        try:
            yield model.model_validate(item)
        except ValidationError:
            continue
