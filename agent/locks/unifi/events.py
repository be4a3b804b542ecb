"""Controller log entries → agent events: which door, which of our codes, which kind of event.

Pure: no I/O. The event id is derived from the controller and the log entry's `_id`, so the same
entry seen over the WebSocket and again in a system-logs catch-up (or again after a restart)
always becomes the same event, which the outbox and the cloud store once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from agent.clock import Clock
from agent.locks.unifi.models import Device, LogEntry, TopologyDoor
from agent.outbox import new_event
from sync_protocol.models import Event, EventType, Method, Scalar

OUR_ACTOR_ID: Final = "kasify-agent"  # actor of the unlocks we make, so we can tell them apart
OUR_ACTOR_NAME: Final = "Kasify"
PIN_PROVIDER: Final = "PIN_CODE"
GRANTED_RESULTS: Final = frozenset({"ACCESS", "GRANTED", "SUCCESS"})
HUB_TARGET_TYPES: Final = frozenset({"uah", "uah-ent", "ua-hub", "hub", "ugt", "device"})
MANUAL_PROVIDERS: Final = frozenset({"BUTTON", "REX", "EXIT_BUTTON", "REQUEST_TO_EXIT", "MANUAL"})


def stable_event_id(controller: str, entry: LogEntry) -> str:
    """A UUIDv7 whose time is the entry's and whose random bits come from its identity."""
    digest = hashlib.sha256(f"unifi\x00{controller}\x00{entry.id}".encode()).digest()
    rand = int.from_bytes(digest[:10], "big") >> 6  # 74 bits
    ms = int(entry.at * 1000) & ((1 << 48) - 1)
    value = ms << 80
    value |= 0x7 << 76
    value |= (rand >> 62) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


class DoorResolver:
    """Finds the door a log entry is about, also when it names the hub instead (Access ≥ 3.4)."""

    def __init__(self) -> None:
        self.doors: dict[str, str] = {}  # door id -> name
        self.hubs: dict[str, str] = {}  # hub/device id -> door id

    def learn_doors(self, doors: Mapping[str, str]) -> None:
        """Door ids and names (from /doors or the topology)."""
        self.doors.update(doors)

    def learn_topology(self, doors: tuple[TopologyDoor, ...]) -> None:
        """Door ids and names of the topology."""
        self.learn_doors({d.door_id: d.name for d in doors})

    def learn_devices(self, devices: tuple[Device, ...]) -> None:
        """Which door each hub serves (from /devices)."""
        for device in devices:
            if device.location_id:
                self.hubs[device.id] = device.location_id

    def learn_hub(self, hub_id: str, door_id: str) -> None:
        """A pairing a device notification revealed."""
        self.hubs[hub_id] = door_id

    def resolve(self, entry: LogEntry) -> str | None:
        """The door id, or None when the entry names no door we can place."""
        door_targets = entry.targets_of("door")
        for target in door_targets:
            if target.id in self.doors:
                return target.id
        for target in (*door_targets, *entry.targets_of(*HUB_TARGET_TYPES)):
            door = self.hubs.get(target.id)
            if door is not None:
                return door
        for target in door_targets:  # last resort: the door's display name, if unambiguous
            named = [d for d, name in self.doors.items() if name and name == target.name]
            if len(named) == 1:
                return named[0]
        return None


@dataclass(frozen=True, slots=True)
class CodeRef:
    """Our code behind a visitor."""

    code_id: str
    booking_id: str | None = None
    task_id: str | None = None


def entry_event(
    entry: LogEntry,
    *,
    controller: str,
    lock_id: str,
    code: CodeRef | None,
    clock: Clock,
) -> Event | None:
    """The agent event for a log entry at one of our doors, or None when it is not one for us."""
    provider = entry.credential_provider
    granted = entry.result in GRANTED_RESULTS
    details: dict[str, Scalar] = {"unifi_log_id": entry.id[:200]}
    if entry.display_message:
        details["message"] = entry.display_message[:200]
    if provider == PIN_PROVIDER:
        kind = EventType.ACCESS_GRANTED if granted else EventType.ACCESS_DENIED
        method = Method.UNIFI_PIN
        result = "granted" if granted else "denied"
        if code is None and entry.actor_name not in ("", "N/A"):
            details["actor"] = entry.actor_name[:200]  # a controller user or someone else's visitor
    elif "REMOTE" in provider or provider == "API":
        if not granted or entry.actor_id == OUR_ACTOR_ID:
            return None  # our own unlocks are recorded by whoever asked for them
        kind, method, result = EventType.UNLOCKED, Method.REMOTE, "unlocked"
        code = None
        details["actor"] = (entry.actor_name or "unknown")[:200]
    elif granted:
        manual = provider in MANUAL_PROVIDERS
        kind, result = EventType.UNLOCKED, "unlocked"
        method = Method.MANUAL if manual else Method.UNKNOWN
        details["credential"] = (provider or "unknown")[:200]
        if entry.actor_name:
            details["actor"] = entry.actor_name[:200]
        code = None
    else:
        kind, method, result = EventType.ACCESS_DENIED, Method.UNKNOWN, "denied"
        details["credential"] = (provider or "unknown")[:200]
        code = None
    event = new_event(
        kind,
        clock,
        lock_id=lock_id,
        code_id=code.code_id if code else None,
        booking_id=code.booking_id if code else None,
        task_id=code.task_id if code else None,
        method=method,
        result=result,
        details=details,
    )
    return event.model_copy(
        update={"id": stable_event_id(controller, entry), "occurred_at": Clock.utc(entry.at)}
    )
