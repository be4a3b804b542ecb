"""Messages of the notifications WebSocket, parsed leniently (pure, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from agent.locks.unifi.models import Position, Relay, as_dict, as_list, as_text

HEARTBEAT: Final = "Hello"  # the controller's bare JSON string, about every 5 s


@dataclass(frozen=True, slots=True)
class Notification:
    """One message of the notifications WebSocket."""

    event: str
    data: Mapping[str, Any]
    event_object_id: str = ""
    receiver_id: str = ""


class Heartbeat:
    """The controller's "Hello"."""


def parse_message(text: str | bytes) -> Notification | Heartbeat | None:
    """A WebSocket message: a notification, the heartbeat, or None when unreadable."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return Heartbeat() if as_text(text).strip() == HEARTBEAT else None
    if value == HEARTBEAT:
        return Heartbeat()
    if not isinstance(value, dict) or not isinstance(value.get("event"), str):
        return None
    return Notification(
        event=value["event"],
        data=as_dict(value.get("data")),
        event_object_id=as_text(value.get("event_object_id")),
        receiver_id=as_text(value.get("receiver_id")),
    )


@dataclass(frozen=True, slots=True)
class DoorUpdate:
    """A door's relay and/or position as a notification reports it (None: not reported)."""

    door_id: str
    relay: Relay | None = None
    position: Position | None = None


def door_updates(note: Notification) -> tuple[DoorUpdate, ...]:
    """Door state carried by location, device and remote-unlock notifications."""
    data = note.data
    if note.event in ("access.data.v2.location.update", "access.data.device.location_update_v2"):
        door_id = as_text(data.get("id") or data.get("unique_id") or note.event_object_id)
        state = as_dict(data.get("state"))
        return (_update(door_id, state, "lock", "dps"),) if door_id and state else ()
    if note.event == "access.data.v2.device.update":
        states = as_list(data.get("location_states"))
        return tuple(
            _update(as_text(s.get("location_id")), s, "lock", "dps")
            for s in states
            if isinstance(s, dict) and s.get("location_id")
        )
    if note.event == "access.data.device.remote_unlock":
        door_id = as_text(data.get("unique_id") or note.event_object_id)
        return (DoorUpdate(door_id, relay=Relay.UNLOCK),) if door_id else ()
    return ()


def hub_doors(note: Notification) -> tuple[tuple[str, str], ...]:
    """(hub id, door id) pairs a device notification reveals."""
    data = note.data
    if note.event == "access.data.v2.device.update":
        hub = as_text(data.get("id"))
        return tuple(
            (hub, as_text(s.get("location_id")))
            for s in as_list(data.get("location_states"))
            if hub and isinstance(s, dict) and s.get("location_id")
        )
    if note.event == "access.data.device.update":
        hub = as_text(data.get("unique_id"))
        door = as_text(as_dict(data.get("door")).get("unique_id"))
        return ((hub, door),) if hub and door else ()
    return ()


def _update(door_id: str, state: Mapping[str, Any], lock_key: str, dps_key: str) -> DoorUpdate:
    relay = Relay.parse(state[lock_key]) if lock_key in state else None
    position = Position.parse(state[dps_key]) if dps_key in state else None
    return DoorUpdate(door_id, relay=relay, position=position)
