"""Typed Nuki messages: one frozen dataclass per command with from_bytes/to_bytes.

Parsing never raises on values it does not know (enums become pseudo-members, bad dates None);
it raises MalformedMessage only when a payload is too short for its command.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Final, Self, TypeVar

from agent.locks.nuki.const import (
    CHALLENGE_LEN,
    NAME_LEN,
    Action,
    Command,
    Completion,
    DoorSensor,
    ErrorCode,
    IdType,
    LockState,
    NukiState,
    StatusCode,
    Trigger,
)
from agent.locks.nuki.errors import MalformedMessage

TIME7: Final = struct.Struct("<HBBBBB")
PIN: Final = struct.Struct("<H")  # the security PIN of a Smart Lock 1.0-4.0 (u32 on Ultra)


# --- field helpers -----------------------------------------------------------------------------


def pack_time(value: datetime | None) -> bytes:
    """A time7 field (UTC); zeros for no time."""
    if value is None:
        return bytes(TIME7.size)
    t = value.astimezone(UTC) if value.tzinfo else value
    return TIME7.pack(t.year, t.month, t.day, t.hour, t.minute, t.second)


def unpack_time(data: bytes, offset: int = 0) -> datetime | None:
    """A time7 field as an aware UTC datetime; None for zeros or an impossible date."""
    year, month, day, hour, minute, second = TIME7.unpack_from(data, offset)
    if year == 0:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def pack_name(name: str, size: int) -> bytes:
    """A NUL-padded UTF-8 field, cut at a character boundary."""
    raw = name.encode()[:size]
    return raw.decode(errors="ignore").encode().ljust(size, b"\x00")


def unpack_name(raw: bytes) -> str:
    """Text of a NUL-padded field."""
    return raw.split(b"\x00", 1)[0].decode(errors="replace")


def need(payload: bytes, size: int, command: Command) -> None:
    if len(payload) < size:
        raise MalformedMessage(command, f"needs {size} bytes, got {len(payload)}")


# --- the registry ------------------------------------------------------------------------------


class Message:
    """Base of every typed message."""

    __slots__ = ()
    COMMAND: ClassVar[Command]

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse a payload (without command id and CRC)."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The payload (without command id and CRC)."""
        raise NotImplementedError


MESSAGE_TYPES: dict[int, type[Message]] = {}
M = TypeVar("M", bound=type[Message])


def register(cls: M) -> M:
    MESSAGE_TYPES[cls.COMMAND] = cls
    return cls


@dataclass(frozen=True, slots=True)
class UnknownMessage(Message):
    """A command this code does not know; kept raw."""

    command: int
    payload: bytes

    def to_bytes(self) -> bytes:
        """The raw payload."""
        return self.payload


def parse_message(command: int, payload: bytes) -> Message:
    """The typed message for a command id; UnknownMessage for ids we do not know."""
    cls = MESSAGE_TYPES.get(command)
    if cls is None:
        return UnknownMessage(command, payload)
    return cls.from_bytes(payload)


def command_of(message: Message) -> int:
    """The command id a message is sent with."""
    return message.command if isinstance(message, UnknownMessage) else message.COMMAND


# --- pairing -----------------------------------------------------------------------------------


@register
@dataclass(frozen=True, slots=True)
class RequestData(Message):
    """Ask the lock to send a command (Keyturner States, a Challenge, …)."""

    COMMAND: ClassVar[Command] = Command.REQUEST_DATA
    requested: int
    extra: bytes = b""

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 2, cls.COMMAND)
        return cls(Command(struct.unpack_from("<H", payload)[0]), payload[2:])

    def to_bytes(self) -> bytes:
        """Encode."""
        return struct.pack("<H", self.requested) + self.extra


@dataclass(frozen=True, slots=True)
class _Bytes32(Message):
    value: bytes

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 32, cls.COMMAND)
        return cls(payload[:32])

    def to_bytes(self) -> bytes:
        """Encode."""
        return self.value


@register
@dataclass(frozen=True, slots=True)
class PublicKey(_Bytes32):
    """A Curve25519 public key."""

    COMMAND: ClassVar[Command] = Command.PUBLIC_KEY


@register
@dataclass(frozen=True, slots=True)
class Challenge(_Bytes32):
    """A single-use nonce nK."""

    COMMAND: ClassVar[Command] = Command.CHALLENGE


@register
@dataclass(frozen=True, slots=True)
class AuthorizationAuthenticator(_Bytes32):
    """HMAC(client pk ‖ lock pk ‖ nK)."""

    COMMAND: ClassVar[Command] = Command.AUTHORIZATION_AUTHENTICATOR


@register
@dataclass(frozen=True, slots=True)
class AuthorizationData(Message):
    """Who is pairing: id type, app id, name and the client's nonce nA."""

    COMMAND: ClassVar[Command] = Command.AUTHORIZATION_DATA
    authenticator: bytes
    id_type: IdType
    app_id: int
    name: str
    nonce: bytes

    @staticmethod
    def signed(id_type: int, app_id: int, name: str, nonce: bytes) -> bytes:
        """The fields the authenticator covers (before nK)."""
        return struct.pack("<BI", id_type, app_id) + pack_name(name, NAME_LEN) + nonce

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 32 + 5 + NAME_LEN + CHALLENGE_LEN, cls.COMMAND)
        id_type, app_id = struct.unpack_from("<BI", payload, 32)
        name = unpack_name(payload[37 : 37 + NAME_LEN])
        nonce = payload[37 + NAME_LEN : 37 + NAME_LEN + CHALLENGE_LEN]
        return cls(payload[:32], IdType(id_type), app_id, name, nonce)

    def to_bytes(self) -> bytes:
        """Encode."""
        return self.authenticator + self.signed(self.id_type, self.app_id, self.name, self.nonce)


@register
@dataclass(frozen=True, slots=True)
class AuthorizationID(Message):
    """The lock's answer: our auth id, its UUID and a new nonce."""

    COMMAND: ClassVar[Command] = Command.AUTHORIZATION_ID
    authenticator: bytes
    auth_id: int
    uuid: bytes
    nonce: bytes

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 32 + 4 + 16 + 32, cls.COMMAND)
        (auth_id,) = struct.unpack_from("<I", payload, 32)
        return cls(payload[:32], auth_id, payload[36:52], payload[52:84])

    def to_bytes(self) -> bytes:
        """Encode."""
        return self.authenticator + struct.pack("<I", self.auth_id) + self.uuid + self.nonce


@register
@dataclass(frozen=True, slots=True)
class AuthorizationIDConfirmation(Message):
    """HMAC(auth id ‖ nK') ‖ auth id: the last step of pairing."""

    COMMAND: ClassVar[Command] = Command.AUTHORIZATION_ID_CONFIRMATION
    authenticator: bytes
    auth_id: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 36, cls.COMMAND)
        return cls(payload[:32], struct.unpack_from("<I", payload, 32)[0])

    def to_bytes(self) -> bytes:
        """Encode."""
        return self.authenticator + struct.pack("<I", self.auth_id)


@register
@dataclass(frozen=True, slots=True)
class Status(Message):
    """ACCEPTED or COMPLETE."""

    COMMAND: ClassVar[Command] = Command.STATUS
    status: StatusCode

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 1, cls.COMMAND)
        return cls(StatusCode(payload[0]))

    def to_bytes(self) -> bytes:
        """Encode."""
        return bytes([self.status])


@register
@dataclass(frozen=True, slots=True)
class ErrorReport(Message):
    """The lock refused a command."""

    COMMAND: ClassVar[Command] = Command.ERROR_REPORT
    code: ErrorCode
    command: Command

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 3, cls.COMMAND)
        code, command = struct.unpack_from("<BH", payload)
        return cls(ErrorCode(code), Command(command))

    def to_bytes(self) -> bytes:
        """Encode."""
        return struct.pack("<BH", self.code, self.command)


# --- state -------------------------------------------------------------------------------------


@register
@dataclass(frozen=True, slots=True)
class KeyturnerStates(Message):
    """The lock's state; newer firmware appends optional bytes, parsed when present."""

    COMMAND: ClassVar[Command] = Command.KEYTURNER_STATES
    BASE_LEN: ClassVar[int] = 19
    nuki_state: NukiState
    lock_state: LockState
    trigger: Trigger
    current_time: datetime | None
    timezone_offset: int  # minutes
    battery_critical: bool
    battery_charging: bool
    battery_percent: int
    config_update_count: int = 0
    lock_n_go_timer: int = 0
    last_lock_action: Action = Action.UNLOCK
    last_action_trigger: Trigger = Trigger.SYSTEM
    last_action_completion: Completion = Completion.SUCCESS
    door_sensor: DoorSensor = DoorSensor.UNAVAILABLE
    night_mode: int | None = None
    accessory_battery: int | None = None
    remote_access: int | None = None
    ble_rssi: int | None = None
    extra: bytes = b""

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, cls.BASE_LEN, cls.COMMAND)
        (tz,) = struct.unpack_from("<h", payload, 10)
        battery = payload[12]
        optional = payload[19:23]
        rssi = struct.unpack_from("<b", payload, 22)[0] if len(payload) > 22 else None
        return cls(
            nuki_state=NukiState(payload[0]),
            lock_state=LockState(payload[1]),
            trigger=Trigger(payload[2]),
            current_time=unpack_time(payload, 3),
            timezone_offset=tz,
            battery_critical=bool(battery & 0x01),
            battery_charging=bool(battery & 0x02),
            battery_percent=(battery >> 2) * 2,
            config_update_count=payload[13],
            lock_n_go_timer=payload[14],
            last_lock_action=Action(payload[15]),
            last_action_trigger=Trigger(payload[16]),
            last_action_completion=Completion(payload[17]),
            door_sensor=DoorSensor(payload[18]),
            night_mode=optional[0] if len(optional) > 0 else None,
            accessory_battery=optional[1] if len(optional) > 1 else None,
            remote_access=optional[2] if len(optional) > 2 else None,
            ble_rssi=rssi,
            extra=payload[23:],
        )

    def to_bytes(self) -> bytes:
        """Encode (optional fields up to the first one that is None)."""
        battery = (
            (min(self.battery_percent, 100) // 2) << 2
            | (0x02 if self.battery_charging else 0)
            | (0x01 if self.battery_critical else 0)
        )
        out = bytearray([self.nuki_state, self.lock_state, self.trigger])
        out += pack_time(self.current_time) + struct.pack("<h", self.timezone_offset)
        out += bytes([battery, self.config_update_count, self.lock_n_go_timer])
        out += bytes([self.last_lock_action, self.last_action_trigger])
        out += bytes([self.last_action_completion, self.door_sensor])
        for value in (self.night_mode, self.accessory_battery, self.remote_access):
            if value is None:
                return bytes(out)
            out.append(value)
        if self.ble_rssi is None:
            return bytes(out)
        return bytes(out) + struct.pack("<b", self.ble_rssi) + self.extra


@register
@dataclass(frozen=True, slots=True)
class BatteryReport(Message):
    """Battery details; fields after the critical flag are optional."""

    COMMAND: ClassVar[Command] = Command.BATTERY_REPORT
    battery_drain_mws: int
    battery_voltage_mv: int
    critical: bool
    lock_action: int = 0
    start_voltage_mv: int | None = None
    lowest_voltage_mv: int | None = None
    lock_distance: int | None = None
    start_temperature_c: int | None = None
    max_turn_current_ma: int | None = None
    battery_resistance_mohm: int | None = None

    TAIL: ClassVar[struct.Struct] = struct.Struct("<HHHbHH")

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 5, cls.COMMAND)
        drain, voltage, critical = struct.unpack_from("<HHB", payload)
        action = payload[5] if len(payload) > 5 else 0
        if len(payload) >= 6 + cls.TAIL.size:
            start, lowest, distance, temp, current, resistance = cls.TAIL.unpack_from(payload, 6)
            return cls(
                drain, voltage, bool(critical), action, start, lowest, distance, temp, current,
                resistance,
            )  # fmt: skip
        return cls(drain, voltage, bool(critical), action)

    def to_bytes(self) -> bytes:
        """Encode."""
        head = struct.pack(
            "<HHBB",
            self.battery_drain_mws,
            self.battery_voltage_mv,
            self.critical,
            self.lock_action,
        )
        tail = (
            self.start_voltage_mv, self.lowest_voltage_mv, self.lock_distance,
            self.start_temperature_c, self.max_turn_current_ma, self.battery_resistance_mohm,
        )  # fmt: skip
        if any(value is None for value in tail):
            return head
        return head + self.TAIL.pack(*tail)


# --- commands with a challenge (and a PIN) -----------------------------------------------------


@register
@dataclass(frozen=True, slots=True)
class LockAction(Message):
    """Unlock, lock, unlatch, …; answered ACCEPTED, state pushes, COMPLETE."""

    COMMAND: ClassVar[Command] = Command.LOCK_ACTION
    action: Action
    app_id: int
    flags: int
    nonce: bytes
    name_suffix: str | None = None

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse (with or without the 20-byte name suffix)."""
        need(payload, 6 + CHALLENGE_LEN, cls.COMMAND)
        action, app_id, flags = struct.unpack_from("<BIB", payload)
        suffix = unpack_name(payload[6:26]) if len(payload) >= 6 + 20 + CHALLENGE_LEN else None
        return cls(Action(action), app_id, flags, payload[-CHALLENGE_LEN:], suffix)

    def to_bytes(self) -> bytes:
        """Encode."""
        head = struct.pack("<BIB", self.action, self.app_id, self.flags)
        suffix = b"" if self.name_suffix is None else pack_name(self.name_suffix, 20)
        return head + suffix + self.nonce


@dataclass(frozen=True, slots=True)
class _NonceOnly(Message):
    nonce: bytes

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, CHALLENGE_LEN, cls.COMMAND)
        return cls(payload[:CHALLENGE_LEN])

    def to_bytes(self) -> bytes:
        """Encode."""
        return self.nonce


@register
@dataclass(frozen=True, slots=True)
class RequestConfig(_NonceOnly):
    """Ask for the Config (challenge first)."""

    COMMAND: ClassVar[Command] = Command.REQUEST_CONFIG


@register
@dataclass(frozen=True, slots=True)
class VerifySecurityPIN(Message):
    """Check a security PIN; COMPLETE or BAD_PIN."""

    COMMAND: ClassVar[Command] = Command.VERIFY_SECURITY_PIN
    nonce: bytes
    pin: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, CHALLENGE_LEN + PIN.size, cls.COMMAND)
        return cls(payload[:CHALLENGE_LEN], PIN.unpack_from(payload, CHALLENGE_LEN)[0])

    def to_bytes(self) -> bytes:
        """Encode."""
        return self.nonce + PIN.pack(self.pin)


@register
@dataclass(frozen=True, slots=True)
class UpdateTime(Message):
    """Set the lock's clock (UTC)."""

    COMMAND: ClassVar[Command] = Command.UPDATE_TIME
    time: datetime | None
    nonce: bytes
    pin: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 7 + CHALLENGE_LEN + PIN.size, cls.COMMAND)
        (pin,) = PIN.unpack_from(payload, 7 + CHALLENGE_LEN)
        return cls(unpack_time(payload), payload[7 : 7 + CHALLENGE_LEN], pin)

    def to_bytes(self) -> bytes:
        """Encode."""
        return pack_time(self.time) + self.nonce + PIN.pack(self.pin)


@register
@dataclass(frozen=True, slots=True)
class Config(Message):
    """The lock's configuration (the fields this agent reads; the rest kept raw)."""

    COMMAND: ClassVar[Command] = Command.CONFIG
    HEAD: ClassVar[struct.Struct] = struct.Struct("<I32sffBBBBB")
    nuki_id: int
    name: str
    latitude: float = 0.0
    longitude: float = 0.0
    auto_unlatch: bool = False
    pairing_enabled: bool = True
    button_enabled: bool = True
    led_enabled: bool = True
    led_brightness: int = 3
    current_time: datetime | None = None
    timezone_offset: int = 0
    rest: bytes = b""  # dst mode, fob, keypad, firmware, … as sent

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, cls.HEAD.size + 9, cls.COMMAND)
        nuki_id, name, lat, lon, unlatch, pairing, button, led, brightness = cls.HEAD.unpack_from(
            payload
        )
        at = cls.HEAD.size
        (tz,) = struct.unpack_from("<h", payload, at + 7)
        return cls(
            nuki_id, unpack_name(name), lat, lon, bool(unlatch), bool(pairing), bool(button),
            bool(led), brightness, unpack_time(payload, at), tz, payload[at + 9 :],
        )  # fmt: skip

    def to_bytes(self) -> bytes:
        """Encode."""
        head = self.HEAD.pack(
            self.nuki_id, pack_name(self.name, NAME_LEN), self.latitude, self.longitude,
            self.auto_unlatch, self.pairing_enabled, self.button_enabled, self.led_enabled,
            self.led_brightness,
        )  # fmt: skip
        return (
            head
            + pack_time(self.current_time)
            + struct.pack("<h", self.timezone_offset)
            + self.rest
        )
