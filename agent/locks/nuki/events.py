"""What the agent records from a Nuki, sans-IO: state changes and log entries -> event drafts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from agent.locks.nuki.const import Action, Completion, DoorSensor, LockState, LogType, Trigger
from agent.locks.nuki.log_messages import (
    LogEntry,
)
from agent.locks.nuki.messages import (
    KeyturnerStates,
)
from sync_protocol.models import DoorState, EventType, Method, Scalar
from sync_protocol.models import LockState as WireLockState

LOCKING_ACTIONS: Final = frozenset({Action.LOCK, Action.FULL_LOCK, Action.LOCK_N_GO})
METHOD_BY_TRIGGER: Final = {
    Trigger.MANUAL: Method.MANUAL,
    Trigger.BUTTON: Method.MANUAL,
    Trigger.AUTOMATIC: Method.AUTO,
    Trigger.AUTO_LOCK: Method.AUTO,
}
WIRE_STATE: Final = {
    LockState.LOCKED: WireLockState.LOCKED,
    LockState.UNLOCKING: WireLockState.UNLOCKING,
    LockState.UNLOCKED: WireLockState.UNLOCKED,
    LockState.UNLOCKED_LOCK_N_GO: WireLockState.UNLOCKED,
    LockState.LOCKING: WireLockState.LOCKING,
    LockState.UNLATCHED: WireLockState.UNLATCHED,
    LockState.UNLATCHING: WireLockState.UNLATCHED,
    LockState.MOTOR_BLOCKED: WireLockState.JAMMED,
}
WIRE_DOOR: Final = {
    DoorSensor.CLOSED: DoorState.CLOSED,
    DoorSensor.OPENED: DoorState.OPEN,
    DoorSensor.UNAVAILABLE: DoorState.NO_SENSOR,
    DoorSensor.DEACTIVATED: DoorState.NO_SENSOR,
}
MOVING: Final = frozenset({LockState.UNLOCKING, LockState.LOCKING, LockState.UNLATCHING})


def wire_state(state: LockState) -> WireLockState:
    """The sync contract's lock state for a Nuki lock state (unknown ones: UNKNOWN)."""
    return WIRE_STATE.get(state, WireLockState.UNKNOWN)


def wire_door(sensor: DoorSensor) -> DoorState:
    """The sync contract's door state for the Nuki door sensor."""
    return WIRE_DOOR.get(sensor, DoorState.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Draft:
    """An event before the clock stamps it."""

    type: EventType
    method: Method | None = None
    code_id: str | None = None
    booking_id: str | None = None
    result: str | None = None
    details: dict[str, Scalar] = field(default_factory=dict)


def from_states(
    previous: KeyturnerStates | None, current: KeyturnerStates, *, logs_cover_actions: bool
) -> list[Draft]:
    """Events a new Keyturner States implies (manual/auto actions only when logs cannot tell)."""
    drafts: list[Draft] = []
    if current.lock_state == LockState.MOTOR_BLOCKED and (
        previous is None or previous.lock_state != LockState.MOTOR_BLOCKED
    ):
        drafts.append(Draft(EventType.LOCK_JAMMED, result="motor_blocked"))
    if current.battery_critical and (previous is None or not previous.battery_critical):
        drafts.append(
            Draft(EventType.BATTERY_LOW, details={"battery_percent": current.battery_percent})
        )
    if previous is None or logs_cover_actions:
        return drafts
    method = METHOD_BY_TRIGGER.get(current.trigger)
    if method is not None and current.lock_state != previous.lock_state:
        if current.lock_state == LockState.LOCKED:
            drafts.append(Draft(EventType.LOCKED, method=method))
        elif current.lock_state in (LockState.UNLOCKED, LockState.UNLATCHED):
            drafts.append(Draft(EventType.UNLOCKED, method=method))
    if current.door_sensor != previous.door_sensor:
        if current.door_sensor == DoorSensor.OPENED:
            drafts.append(Draft(EventType.DOOR_OPENED))
        elif current.door_sensor == DoorSensor.CLOSED:
            drafts.append(Draft(EventType.DOOR_CLOSED))
    return drafts


def from_log(
    entry: LogEntry,
    codes_by_keypad_id: Mapping[int, tuple[str, str | None]],
) -> Draft | None:
    """The event for one new log entry (None for entries we do not report)."""
    details: dict[str, Scalar] = {"nuki_log_index": entry.index}
    if entry.timestamp is not None:
        details["lock_time"] = entry.timestamp.isoformat()
    keypad = entry.keypad()
    if keypad is not None:
        details["keypad_code_id"] = keypad.code_id
        code_id, booking_id = codes_by_keypad_id.get(keypad.code_id, (None, None))
        if keypad.completion == Completion.SUCCESS:
            if code_id is None and entry.name:
                details["keypad_code_name"] = entry.name
            return Draft(
                EventType.ACCESS_GRANTED,
                Method.NUKI_KEYPAD,
                code_id,
                booking_id,
                "granted",
                details,
            )
        reason = (
            "invalid_code"
            if keypad.completion == Completion.INVALID_CODE
            else keypad.completion.name.lower()
        )
        return Draft(EventType.ACCESS_DENIED, Method.NUKI_KEYPAD, None, None, reason, details)
    action = entry.lock_action()
    if action is not None:
        kind, trigger, _, completion = action
        method = METHOD_BY_TRIGGER.get(trigger)
        if method is None:
            return None  # Bluetooth actions are ours or the app's: recorded where they start
        if completion == Completion.MOTOR_BLOCKED:
            return Draft(
                EventType.LOCK_JAMMED, method=method, result="motor_blocked", details=details
            )
        event = EventType.LOCKED if kind in LOCKING_ACTIONS else EventType.UNLOCKED
        return Draft(event, method=method, result=completion.name.lower(), details=details)
    if entry.type == LogType.DOOR_SENSOR and entry.data:
        if entry.data[0] == 0x00:
            return Draft(EventType.DOOR_OPENED, details=details)
        if entry.data[0] == 0x01:
            return Draft(EventType.DOOR_CLOSED, details=details)
    return None
