"""The emulated lock's world, sans-IO: bolt and motor, battery, door sensor, keypad codes, log.

Times are Unix seconds passed in by the caller (`now`); the lock keeps its own clock as an offset
that UpdateTime moves. Timed work (the motor) is a schedule the caller runs with `tick(now)` at
`next_deadline()`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from agent.locks.nuki.const import (
    Action,
    Completion,
    DoorSensor,
    IdType,
    KeypadSource,
    LockState,
    LogType,
    NukiState,
    Trigger,
)
from agent.locks.nuki.keypad_messages import TimeWindow
from agent.locks.nuki.log_messages import (
    LogEntry,
)
from agent.locks.nuki.messages import (
    KeyturnerStates,
)

DEFAULT_CAPACITY: Final = 100  # keypad codes a lock holds
LOG_LIMIT: Final = 1000  # entries kept
CRITICAL_PERCENT: Final = 20  # below this the lock reports its battery critical
UNLATCH_HOLD_S: Final = 1.0  # the latch stays pulled before the bolt rests at unlocked

TARGETS: Final = {
    Action.UNLOCK: (LockState.UNLOCKING, LockState.UNLOCKED),
    Action.LOCK: (LockState.LOCKING, LockState.LOCKED),
    Action.FULL_LOCK: (LockState.LOCKING, LockState.LOCKED),
    Action.UNLATCH: (LockState.UNLATCHING, LockState.UNLATCHED),
    Action.LOCK_N_GO: (LockState.LOCKING, LockState.LOCKED),
    Action.LOCK_N_GO_UNLATCH: (LockState.UNLATCHING, LockState.LOCKED),
}


def code_rule_error(code: int) -> str | None:
    """Why the lock refuses a keypad code (exactly 6 digits, no 0, not starting 12), or None."""
    text = str(code)
    if len(text) != 6:
        return "a code has exactly 6 digits"
    if "0" in text:
        return "a code must not contain 0"
    if text.startswith("12"):
        return "a code must not start with 12"
    return None


@dataclass
class Authorization:
    """A paired client."""

    auth_id: int
    id_type: IdType
    app_id: int
    name: str
    shared_key: bytes
    uuid: bytes


@dataclass
class StoredCode:
    """A keypad code held by the lock."""

    code_id: int
    code: int
    name: str
    enabled: bool
    window: TimeWindow
    created: datetime | None
    last_active: datetime | None = None
    lock_count: int = 0

    def allows(self, at: datetime) -> bool:
        """Whether the code opens at this (lock) time."""
        if not self.enabled:
            return False
        w = self.window
        if not w.time_limited:
            return True
        if w.allowed_from is not None and at < w.allowed_from:
            return False
        if w.allowed_until is not None and at > w.allowed_until:
            return False
        if w.weekdays and not w.weekdays & (1 << (6 - at.weekday())):
            return False
        if w.from_time != (0, 0) or w.until_time != (0, 0):
            minute = at.hour * 60 + at.minute
            start = w.from_time[0] * 60 + w.from_time[1]
            end = w.until_time[0] * 60 + w.until_time[1]
            return start <= minute <= end
        return True


@dataclass
class Motion:
    """The motor's current job."""

    action: Action
    trigger: Trigger
    auth_id: int
    name: str
    blocked: bool = False


@dataclass
class LockWorld:
    """Everything the lock knows that is not about one connection."""

    nuki_id: int
    name: str
    secret_key: bytes
    security_pin: int = 1234
    lock_state: LockState = LockState.LOCKED
    trigger: Trigger = Trigger.SYSTEM
    door: DoorSensor = DoorSensor.CLOSED
    battery_percent: float = 90.0
    battery_critical_forced: bool | None = None
    battery_drain_per_action: float = 0.0
    last_action: Action = Action.LOCK
    last_trigger: Trigger = Trigger.SYSTEM
    last_completion: Completion = Completion.SUCCESS
    pairing_until: float = 0.0
    clock_offset: float = 0.0
    state_changed: bool = False
    config_update_count: int = 0
    capacity: int = DEFAULT_CAPACITY
    motor_s: float = 2.0
    push_interval_s: float = 1.0
    authorizations: dict[int, Authorization] = field(default_factory=dict)
    codes: dict[int, StoredCode] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    next_auth_id: int = 1
    next_code_id: int = 1
    next_log_index: int = 1
    motion: Motion | None = None
    schedule: list[tuple[float, int, Callable[[float], None]]] = field(default_factory=list)
    on_states: Callable[[KeyturnerStates], None] | None = None
    _seq: int = 0

    # --- time ----------------------------------------------------------------------------------

    def lock_time(self, now: float) -> datetime:
        """The lock's own clock."""
        return datetime.fromtimestamp(int(now + self.clock_offset), UTC)

    def set_time(self, value: datetime, now: float) -> None:
        """UpdateTime."""
        self.clock_offset = value.timestamp() - now

    def pairing_mode(self, now: float) -> bool:
        """Whether the lock accepts a new pairing."""
        return now < self.pairing_until

    # --- state ---------------------------------------------------------------------------------

    @property
    def battery_critical(self) -> bool:
        """Critical below CRITICAL_PERCENT unless forced."""
        if self.battery_critical_forced is not None:
            return self.battery_critical_forced
        return self.battery_percent < CRITICAL_PERCENT

    def states(self, now: float) -> KeyturnerStates:
        """Keyturner States as the lock would send them."""
        return KeyturnerStates(
            nuki_state=NukiState.PAIRING_MODE if self.pairing_mode(now) else NukiState.DOOR_MODE,
            lock_state=self.lock_state,
            trigger=self.trigger,
            current_time=self.lock_time(now),
            timezone_offset=0,
            battery_critical=self.battery_critical,
            battery_charging=False,
            battery_percent=int(self.battery_percent) // 2 * 2,
            config_update_count=self.config_update_count,
            last_lock_action=self.last_action,
            last_action_trigger=self.last_trigger,
            last_action_completion=self.last_completion,
            door_sensor=self.door,
        )

    def _changed(self) -> None:
        self.state_changed = True

    def _set_state(self, state: LockState, trigger: Trigger, now: float) -> None:
        self.lock_state = state
        self.trigger = trigger
        self._changed()
        if self.on_states is not None:
            self.on_states(self.states(now))

    # --- schedule ------------------------------------------------------------------------------

    def at(self, due: float, step: Callable[[float], None]) -> None:
        """Run step at due (by tick)."""
        self._seq += 1
        self.schedule.append((due, self._seq, step))
        self.schedule.sort(key=lambda item: (item[0], item[1]))

    def next_deadline(self) -> float | None:
        """When tick must run next."""
        return self.schedule[0][0] if self.schedule else None

    def tick(self, now: float) -> None:
        """Run every due step."""
        while self.schedule and self.schedule[0][0] <= now:
            _, _, step = self.schedule.pop(0)
            step(now)

    # --- the motor -----------------------------------------------------------------------------

    def satisfied(self, action: Action) -> bool:
        """Whether the bolt already is where the action would put it."""
        if action in (Action.LOCK, Action.FULL_LOCK):
            return self.lock_state == LockState.LOCKED
        if action == Action.UNLOCK:
            return self.lock_state in (LockState.UNLOCKED, LockState.UNLOCKED_LOCK_N_GO)
        return False

    def start_motion(
        self,
        action: Action,
        trigger: Trigger,
        now: float,
        *,
        auth_id: int = 0,
        name: str = "",
        blocked: bool = False,
        done: Callable[[Motion, float], None] | None = None,
    ) -> None:
        """Move the bolt: transitional state now, pushes while moving, final state after motor_s."""
        moving, final = TARGETS.get(action, (LockState.UNLOCKING, LockState.UNLOCKED))
        motion = self.motion = Motion(action, trigger, auth_id, name, blocked)
        self._set_state(moving, trigger, now)
        end = now + self.motor_s
        push = now + self.push_interval_s
        while self.push_interval_s > 0 and push < end:
            self.at(push, lambda t: self._push(t))
            push += self.push_interval_s

        def finish(t: float) -> None:
            if motion.blocked:
                self.last_completion = Completion.MOTOR_BLOCKED
                self._end_motion(motion, LockState.MOTOR_BLOCKED, t, done)
            elif final == LockState.UNLATCHED:
                self._set_state(LockState.UNLATCHED, trigger, t)
                hold = t + min(UNLATCH_HOLD_S, self.motor_s)
                self.at(hold, lambda t2: self._end_motion(motion, LockState.UNLOCKED, t2, done))
            else:
                self._end_motion(motion, final, t, done)

        self.at(end, finish)

    def _push(self, now: float) -> None:
        if self.on_states is not None and self.motion is not None:
            self.on_states(self.states(now))

    def _end_motion(
        self,
        motion: Motion,
        state: LockState,
        now: float,
        done: Callable[[Motion, float], None] | None,
    ) -> None:
        self.last_action, self.last_trigger = motion.action, motion.trigger
        if not motion.blocked:
            self.last_completion = Completion.SUCCESS
        self.battery_percent = max(0.0, self.battery_percent - self.battery_drain_per_action)
        self.motion = None
        self._set_state(state, motion.trigger, now)
        if motion.trigger != Trigger.SYSTEM or motion.auth_id:
            self.add_log(
                now,
                LogType.LOCK_ACTION,
                bytes([motion.action, motion.trigger, 0, self.last_completion]),
                auth_id=motion.auth_id,
                name=motion.name,
            )
        if done is not None:
            done(motion, now)

    # --- the physical world --------------------------------------------------------------------

    def manual(self, action: Action, now: float, trigger: Trigger = Trigger.MANUAL) -> bool:
        """Someone turns the knob (or auto-lock fires); False while the motor runs."""
        if self.motion is not None:
            return False
        self.start_motion(action, trigger, now, name="Manual" if trigger == Trigger.MANUAL else "")
        return True

    def set_door(self, is_open: bool, now: float) -> None:
        """The door sensor reports open or closed."""
        self.door = DoorSensor.OPENED if is_open else DoorSensor.CLOSED
        self._changed()
        self.add_log(now, LogType.DOOR_SENSOR, bytes([0x00 if is_open else 0x01]))
        if self.on_states is not None:
            self.on_states(self.states(now))

    def set_battery(self, percent: float, critical: bool | None = None) -> None:
        """Drain (or replace) the batteries."""
        self.battery_percent = max(0.0, min(100.0, percent))
        self.battery_critical_forced = critical
        self._changed()

    def keypad_entry(self, text: str, now: float) -> tuple[str, StoredCode | None]:
        """A code typed on the Nuki Keypad: (result, code) with result granted|denied|busy."""
        at = self.lock_time(now)
        match = next((c for c in self.codes.values() if str(c.code) == text and c.allows(at)), None)
        if match is None:
            entry = struct.pack(
                "<BBBH", Action.UNLOCK, KeypadSource.CODE, Completion.INVALID_CODE, 0
            )
            self.add_log(now, LogType.KEYPAD_ACTION, entry, name="Keypad")
            return "denied", None
        if self.motion is not None:
            return "busy", match
        match.lock_count += 1
        match.last_active = at
        entry = struct.pack(
            "<BBBH", Action.UNLOCK, KeypadSource.CODE, Completion.SUCCESS, match.code_id
        )
        self.add_log(now, LogType.KEYPAD_ACTION, entry, name=match.name)
        if not self.satisfied(Action.UNLOCK):
            self.start_motion(Action.UNLOCK, Trigger.SYSTEM, now, name=match.name)
        return "granted", match

    def add_log(
        self, now: float, kind: LogType, data: bytes, *, auth_id: int = 0, name: str = ""
    ) -> LogEntry:
        """Append a log entry (the beacon flag goes up)."""
        entry = LogEntry(self.next_log_index, self.lock_time(now), auth_id, name, kind, data)
        self.next_log_index += 1
        self.log.append(entry)
        del self.log[:-LOG_LIMIT]
        self._changed()
        return entry

    # --- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The durable state (keys, pairings, codes, PIN)."""
        return {
            "nuki_id": self.nuki_id,
            "name": self.name,
            "secret_key": self.secret_key.hex(),
            "security_pin": self.security_pin,
            "next_auth_id": self.next_auth_id,
            "next_code_id": self.next_code_id,
            "authorizations": [
                {
                    "auth_id": a.auth_id,
                    "id_type": int(a.id_type),
                    "app_id": a.app_id,
                    "name": a.name,
                    "shared_key": a.shared_key.hex(),
                    "uuid": a.uuid.hex(),
                }
                for a in self.authorizations.values()
            ],
            "codes": [
                {
                    "code_id": c.code_id,
                    "code": c.code,
                    "name": c.name,
                    "enabled": c.enabled,
                    "window": c.window.to_bytes().hex(),
                }
                for c in self.codes.values()
            ],
        }

    def load_json(self, data: dict[str, Any]) -> None:
        """Restore what to_json saved."""
        self.secret_key = bytes.fromhex(data["secret_key"])
        self.security_pin = int(data["security_pin"])
        self.next_auth_id = int(data["next_auth_id"])
        self.next_code_id = int(data["next_code_id"])
        for a in data["authorizations"]:
            auth = Authorization(
                int(a["auth_id"]), IdType(int(a["id_type"])), int(a["app_id"]), str(a["name"]),
                bytes.fromhex(a["shared_key"]), bytes.fromhex(a["uuid"]),
            )  # fmt: skip
            self.authorizations[auth.auth_id] = auth
        for c in data["codes"]:
            window = TimeWindow.from_bytes(bytes.fromhex(c["window"]))
            self.codes[int(c["code_id"])] = StoredCode(
                int(c["code_id"]), int(c["code"]), str(c["name"]), bool(c["enabled"]), window, None
            )
