"""Pydantic models of every MQTT body in the sync contract."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from sync_protocol import PROTOCOL_VERSION
from sync_protocol.topics import check_gateway_id

MAX_EVENTS_PER_BATCH = 200
MAX_DETAILS = 32
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


def _check_gateway(value: str) -> str:
    try:
        return check_gateway_id(value)
    except Exception as exc:
        raise ValueError(str(exc)) from None


E = TypeVar("E", bound=StrEnum)


def lenient(enum: type[E], fallback: E) -> Callable[[Any], Any]:
    """A validator that maps values a newer peer may send to `fallback` instead of failing."""

    def parse(value: Any) -> Any:
        if isinstance(value, str) and value not in enum._value2member_map_:
            return fallback
        return value

    return parse


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
GatewayId = Annotated[str, AfterValidator(_check_gateway)]
EventId = Annotated[str, StringConstraints(pattern=UUID_RE.pattern)]
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_zone)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
Scalar = str | int | float | bool | None


class Wire(BaseModel):
    """Base of every body: immutable, lenient about fields a newer peer adds."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class LockKind(StrEnum):
    """How the agent drives a lock."""

    RELAY = "relay"  # a strike relay on the keypad controller
    NUKI = "nuki"
    UNIFI = "unifi"


class CodeKind(StrEnum):
    """Who an access code is for."""

    GUEST = "guest"
    CREW = "crew"
    MANAGER = "manager"
    BACKUP = "backup"


class LockState(StrEnum):
    """A lock's bolt as last seen."""

    LOCKED = "locked"
    UNLOCKING = "unlocking"
    UNLOCKED = "unlocked"
    LOCKING = "locking"
    UNLATCHED = "unlatched"
    JAMMED = "jammed"
    UNKNOWN = "unknown"


class DoorState(StrEnum):
    """A door's position sensor as last seen."""

    OPEN = "open"
    CLOSED = "closed"
    NO_SENSOR = "no_sensor"
    UNKNOWN = "unknown"


class DeliveryState(StrEnum):
    """A code's state on one lock that checks codes itself."""

    UNSET = "unset"
    SETTING = "setting"
    SET = "set"
    REMOVING = "removing"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Method(StrEnum):
    """How an entry or lock action was made."""

    GATEWAY_KEYPAD = "gateway_keypad"
    NUKI_KEYPAD = "nuki_keypad"
    UNIFI_PIN = "unifi_pin"
    REMOTE = "remote"
    MANUAL = "manual"
    AUTO = "auto"
    UNKNOWN = "unknown"


class EventType(StrEnum):
    """Event types this agent version produces; the cloud stores unknown ones too."""

    ACCESS_GRANTED = "access_granted"
    ACCESS_DENIED = "access_denied"
    KEYPAD_LOCKOUT = "keypad_lockout"
    DOOR_OPENED = "door_opened"
    DOOR_CLOSED = "door_closed"
    TAMPER = "tamper"
    KEYPAD_CONNECTED = "keypad_connected"
    KEYPAD_DISCONNECTED = "keypad_disconnected"
    LOCKED = "locked"  # a lock was locked (method: manual, auto, remote, …)
    UNLOCKED = "unlocked"  # unlocked or unlatched by something other than a code
    LOCK_JAMMED = "lock_jammed"  # motor blocked or the action failed on the lock
    LOCK_ONLINE = "lock_online"
    LOCK_OFFLINE = "lock_offline"
    BATTERY_LOW = "battery_low"  # the lock reports its battery critical
    CLOCK_UNTRUSTED = "clock_untrusted"
    STORE_RECOVERED = "store_recovered"  # the agent's database was damaged and set aside
    DESIRED_APPLIED = "desired_applied"
    DESIRED_REJECTED = "desired_rejected"
    COMMAND_REJECTED = "command_rejected"
    EVENTS_DROPPED = "events_dropped"


class LockSpec(Wire):
    """A lock the gateway drives."""

    id: Identifier
    kind: LockKind
    ref: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    name: Annotated[str, StringConstraints(max_length=80)] = ""
    settings: dict[Annotated[str, StringConstraints(max_length=40)], Scalar] = Field(
        default_factory=dict, max_length=MAX_DETAILS
    )


class DesiredCode(Wire):
    """An access code the gateway must honour; the PIN is sealed to the gateway's key."""

    id: Identifier
    kind: CodeKind
    pin: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    lock_ids: tuple[Identifier, ...] = Field(min_length=1, max_length=64)
    booking_id: Identifier | None = None
    task_id: Identifier | None = None
    label: Annotated[str, StringConstraints(max_length=20)] = ""

    @model_validator(mode="after")
    def _window(self) -> DesiredCode:
        if self.starts_at and self.ends_at and self.starts_at >= self.ends_at:
            raise ValueError(f"code {self.id}: starts_at must be before ends_at")
        return self


class DesiredState(Wire):
    """Everything the cloud wants a gateway to enforce, as one signed document."""

    v: Literal[1] = PROTOCOL_VERSION
    gateway_id: GatewayId
    property_id: Identifier
    version: int = Field(ge=1)
    issued_at: UtcDatetime
    timezone: TimeZoneName
    horizon_until: UtcDatetime
    locks: tuple[LockSpec, ...] = Field(default=(), max_length=256)
    codes: tuple[DesiredCode, ...] = Field(default=(), max_length=20_000)

    @model_validator(mode="after")
    def _references(self) -> DesiredState:
        lock_ids = {lock.id for lock in self.locks}
        if len(lock_ids) != len(self.locks):
            raise ValueError("lock ids must be unique")
        if len({code.id for code in self.codes}) != len(self.codes):
            raise ValueError("code ids must be unique")
        for code in self.codes:
            unknown = set(code.lock_ids) - lock_ids
            if unknown:
                raise ValueError(f"code {code.id} names unknown locks {sorted(unknown)}")
        return self


class ClockStatus(Wire):
    """Whether the agent trusts its clock, and why."""

    synchronized: bool
    trusted: bool
    last_good: UtcDatetime | None = None
    offset_s: float | None = None  # system clock minus the cloud's issued_at at the last apply


class LockStatus(Wire):
    """One lock's live status."""

    lock_id: Identifier
    state: Annotated[LockState, BeforeValidator(lenient(LockState, LockState.UNKNOWN))] = (
        LockState.UNKNOWN
    )
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    battery_critical: bool | None = None
    door: Annotated[DoorState, BeforeValidator(lenient(DoorState, DoorState.UNKNOWN))] = (
        DoorState.UNKNOWN
    )
    reachable: bool = False
    last_seen: UtcDatetime | None = None


class CodeDelivery(Wire):
    """A code's delivery state on one lock."""

    code_id: Identifier
    lock_id: Identifier
    state: Annotated[DeliveryState, BeforeValidator(lenient(DeliveryState, DeliveryState.UNKNOWN))]
    error: ShortText | None = None


class NukiDevice(Wire):
    """A Nuki lock the agent has seen on the radio."""

    nuki_id: Annotated[str, StringConstraints(max_length=16)]
    name: Annotated[str, StringConstraints(max_length=80)] = ""
    paired: bool = False
    rssi: int | None = None


class UnifiDoor(Wire):
    """A door offered by the UniFi Access controller."""

    floor_id: Annotated[str, StringConstraints(max_length=64)]
    door_id: Annotated[str, StringConstraints(max_length=64)]
    name: Annotated[str, StringConstraints(max_length=80)] = ""


class Inventory(Wire):
    """Devices the agent can reach."""

    nuki: tuple[NukiDevice, ...] = Field(default=(), max_length=256)
    unifi: tuple[UnifiDoor, ...] = Field(default=(), max_length=1024)
    keypad_connected: bool = False
    keypad_firmware: Annotated[str, StringConstraints(max_length=40)] | None = None


class Rejection(Wire):
    """Why the agent refused the last desired document or command."""

    reason: Annotated[str, StringConstraints(max_length=40)]
    detail: ShortText
    version: int | None = None
    at: UtcDatetime


class ReportedState(Wire):
    """What the agent actually holds and sees."""

    v: Literal[1] = PROTOCOL_VERSION
    gateway_id: GatewayId
    applied_version: int = Field(ge=0)
    agent_version: Annotated[str, StringConstraints(max_length=40)]
    uptime_s: float = Field(ge=0)
    reported_at: UtcDatetime
    clock: ClockStatus
    outbox_depth: int = Field(ge=0)
    locks: tuple[LockStatus, ...] = Field(default=(), max_length=256)
    codes: tuple[CodeDelivery, ...] = Field(default=(), max_length=50_000)
    inventory: Inventory = Inventory()
    rejection: Rejection | None = None


class Event(Wire):
    """One thing that happened at the property, recorded by the agent."""

    id: EventId
    type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    occurred_at: UtcDatetime
    clock_trusted: bool
    lock_id: Identifier | None = None
    code_id: Identifier | None = None
    booking_id: Identifier | None = None
    task_id: Identifier | None = None
    method: Annotated[Method, BeforeValidator(lenient(Method, Method.UNKNOWN))] | None = None
    result: Annotated[str, StringConstraints(max_length=40)] | None = None
    details: dict[Annotated[str, StringConstraints(max_length=40)], Scalar] = Field(
        default_factory=dict, max_length=MAX_DETAILS
    )


class EventBatch(Wire):
    """Events sent together; each is stored once by its id."""

    v: Literal[1] = PROTOCOL_VERSION
    gateway_id: GatewayId
    events: tuple[Event, ...] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventAck(Wire):
    """The cloud stored these events (or already had them); the agent may forget them."""

    v: Literal[1] = PROTOCOL_VERSION
    gateway_id: GatewayId
    event_ids: tuple[EventId, ...] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)
    issued_at: UtcDatetime


class CommandAction(StrEnum):
    """What a remote command asks for."""

    UNLOCK = "unlock"
    LOCK = "lock"
    UNLATCH = "unlatch"
    SYNC_NOW = "sync_now"


LOCK_ACTIONS = frozenset({CommandAction.UNLOCK, CommandAction.LOCK, CommandAction.UNLATCH})


class Command(Wire):
    """A signed remote command with an id and an expiry."""

    v: Literal[1] = PROTOCOL_VERSION
    id: EventId
    gateway_id: GatewayId
    action: CommandAction
    lock_id: Identifier | None = None
    issued_at: UtcDatetime
    expires_at: UtcDatetime
    requested_by: ShortText = ""

    @model_validator(mode="after")
    def _shape(self) -> Command:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        if self.action in LOCK_ACTIONS and self.lock_id is None:
            raise ValueError(f"{self.action.value} needs a lock_id")
        return self


class CommandStatus(StrEnum):
    """How a command ended."""

    OK = "ok"
    FAILED = "failed"
    REJECTED = "rejected"


class CommandResult(Wire):
    """The agent's answer to a command, correlated by its id."""

    v: Literal[1] = PROTOCOL_VERSION
    command_id: EventId
    gateway_id: GatewayId
    status: Annotated[CommandStatus, BeforeValidator(lenient(CommandStatus, CommandStatus.FAILED))]
    reason: Annotated[str, StringConstraints(max_length=40)] | None = None
    detail: ShortText = ""
    finished_at: UtcDatetime


class Presence(StrEnum):
    """The retained presence body; the broker publishes OFFLINE as the agent's last will."""

    ONLINE = "online"
    OFFLINE = "offline"
