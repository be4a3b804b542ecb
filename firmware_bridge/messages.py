"""Typed keypad-link messages: one frozen dataclass per type, payload bytes in and out."""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, Self, TypeAlias, TypeVar

from firmware_bridge.constants import (
    FIRST_RELIABLE_TYPE,
    MAX_CODE_LENGTH,
    MAX_INDICATE_MS,
    MAX_PULSE_MS,
    MAX_RELAYS,
    MIN_PULSE_MS,
    PROTOCOL_VERSION,
)
from firmware_bridge.errors import FrameError, FrameErrorReason, NakReason

__all__ = [
    "Ack",
    "BeepPattern",
    "Capability",
    "DeviceMessage",
    "DoorContact",
    "DoorState",
    "Heartbeat",
    "Hello",
    "HelloReason",
    "HostHello",
    "HostMessage",
    "Indicate",
    "KeyEntry",
    "LedColour",
    "Message",
    "MsgType",
    "Nak",
    "Outcome",
    "RelayPulse",
    "Result",
    "StatusFlags",
    "Tamper",
    "TamperState",
    "decode_payload",
]


_T = TypeVar("_T")


class MsgType(enum.IntEnum):
    """Frame type codes; codes below 0x10 are unreliable in every protocol version."""

    ACK = 0x01
    NAK = 0x02
    HEARTBEAT = 0x03
    HELLO = 0x10
    KEY_ENTRY = 0x11
    DOOR_CONTACT = 0x12
    TAMPER = 0x13
    HOST_HELLO = 0x20
    RESULT = 0x21
    RELAY_PULSE = 0x22
    INDICATE = 0x23

    @classmethod
    def lookup(cls, code: int) -> MsgType | None:
        """Return the type for a wire code, or None if this build does not know it."""
        try:
            return cls(code)
        except ValueError:
            return None

    @property
    def reliable(self) -> bool:
        """Whether frames of this type carry a sequence number and are acknowledged."""
        return is_reliable_code(self.value)


def is_reliable_code(code: int) -> bool:
    """Return whether a (possibly unknown) type code denotes a reliable frame."""
    return code >= FIRST_RELIABLE_TYPE


class _WireEnum(enum.IntEnum):
    """An IntEnum whose unknown wire values decode to UNKNOWN instead of raising."""

    @classmethod
    def _missing_(cls, value: object) -> Self:
        return cls["UNKNOWN"]


class HelloReason(_WireEnum):
    """Why the device sent HELLO."""

    UNKNOWN = -1
    BOOT = 0  # device started; it has no session with the host, which must send HOST_HELLO
    REQUESTED = 1  # answer to HOST_HELLO
    RESYNC = 2  # device restarted its sending session (gave up on a frame or was NAKed)


class Capability(enum.IntFlag):
    """Hardware the device has; unknown bits are kept."""

    NONE = 0
    KEYPAD = 0x01
    RELAY = 0x02
    DOOR_CONTACT = 0x04
    TAMPER = 0x08
    BUZZER = 0x10
    LED = 0x20


ALL_CAPABILITIES: Final = (
    Capability.KEYPAD
    | Capability.RELAY
    | Capability.DOOR_CONTACT
    | Capability.TAMPER
    | Capability.BUZZER
    | Capability.LED
)


class StatusFlags(enum.IntFlag):
    """Input and UI state in HEARTBEAT; unknown bits are kept."""

    NONE = 0
    DOOR_OPEN = 0x01
    TAMPER_ACTIVE = 0x02
    ENTRY_IN_PROGRESS = 0x04  # digits typed, not yet submitted or cleared
    AWAITING_RESULT = 0x08  # KEY_ENTRY sent, no RESULT yet


class DoorState(_WireEnum):
    """Door contact reading."""

    UNKNOWN = -1
    CLOSED = 0
    OPEN = 1


class TamperState(_WireEnum):
    """Tamper switch reading."""

    UNKNOWN = -1
    CLEAR = 0
    ACTIVE = 1


class Outcome(_WireEnum):
    """The host's decision on a typed code, shown to the guest."""

    UNKNOWN = -1
    GRANTED = 1
    DENIED = 2
    LOCKED_OUT = 3
    ERROR = 4


class BeepPattern(_WireEnum):
    """Buzzer patterns."""

    UNKNOWN = -1
    NONE = 0
    SHORT = 1  # one 80 ms beep
    DOUBLE = 2  # two 80 ms beeps
    LONG = 3  # one 600 ms beep
    ERROR = 4  # three 80 ms beeps


class LedColour(_WireEnum):
    """LED colours."""

    UNKNOWN = -1
    OFF = 0
    GREEN = 1
    RED = 2
    AMBER = 3
    BLUE = 4
    WHITE = 5


def _bad_payload(msg_type: MsgType, detail: str) -> FrameError:
    return FrameError(FrameErrorReason.BAD_PAYLOAD, f"{msg_type.name} payload: {detail}")


def _expect_len(msg_type: MsgType, payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise _bad_payload(msg_type, f"{len(payload)} bytes, expected {size}")


def _check_u8(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be 0..255, got {value}")


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be 0..65535, got {value}")


def _wire(name: str, value: enum.IntEnum) -> int:
    if value.value < 0:
        raise ValueError(f"{name} {value!r} cannot be sent")
    return value.value


def _construct(msg_type: MsgType, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except ValueError as exc:
        raise _bad_payload(msg_type, str(exc)) from None


_ACK: Final = struct.Struct(">BH")


@dataclass(frozen=True, slots=True)
class Ack:
    """Acknowledges every reliable frame up to and including acked_seq in session."""

    TYPE: ClassVar[MsgType] = MsgType.ACK
    acked_seq: int
    session: int

    def __post_init__(self) -> None:
        _check_u8("acked_seq", self.acked_seq)
        _check_u16("session", self.session)

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return _ACK.pack(self.acked_seq, self.session)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, _ACK.size)
        return cls(*_ACK.unpack(payload))


@dataclass(frozen=True, slots=True)
class Nak:
    """Refuses a frame that passed the CRC but cannot be processed (layout frozen forever)."""

    TYPE: ClassVar[MsgType] = MsgType.NAK
    nak_seq: int
    nak_type: int  # type code of the refused frame, possibly unknown to us
    reason: NakReason
    detail: int = 0  # for UNSUPPORTED_VERSION: the version the refusing side speaks

    def __post_init__(self) -> None:
        _check_u8("nak_seq", self.nak_seq)
        _check_u8("nak_type", self.nak_type)
        _check_u8("detail", self.detail)

    def to_bytes(self) -> bytes:
        """Return the payload."""
        reason = _wire("reason", self.reason)
        return bytes((self.nak_seq, self.nak_type, reason, self.detail))

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, 4)
        return cls(payload[0], payload[1], NakReason(payload[2]), payload[3])


_HEARTBEAT: Final = struct.Struct(">IBB")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Periodic device status: uptime, inputs, energised relays."""

    TYPE: ClassVar[MsgType] = MsgType.HEARTBEAT
    uptime_s: int
    flags: StatusFlags = StatusFlags.NONE
    relays: int = 0  # bit n set: relay n energised

    def __post_init__(self) -> None:
        if not 0 <= self.uptime_s <= 0xFFFF_FFFF:
            raise ValueError(f"uptime_s must fit in u32, got {self.uptime_s}")
        _check_u8("flags", int(self.flags))
        _check_u8("relays", self.relays)

    @property
    def door_open(self) -> bool:
        """Whether the door contact reads open."""
        return StatusFlags.DOOR_OPEN in self.flags

    @property
    def tamper_active(self) -> bool:
        """Whether the tamper switch is triggered."""
        return StatusFlags.TAMPER_ACTIVE in self.flags

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return _HEARTBEAT.pack(self.uptime_s, int(self.flags), self.relays)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, _HEARTBEAT.size)
        uptime, flags, relays = _HEARTBEAT.unpack(payload)
        return cls(uptime, StatusFlags(flags), relays)


_HELLO: Final = struct.Struct(">HBBBBBHB")


@dataclass(frozen=True, slots=True)
class Hello:
    """Device announcement; starts the device's sending session (layout frozen forever)."""

    TYPE: ClassVar[MsgType] = MsgType.HELLO
    reason: HelloReason
    firmware: tuple[int, int, int]
    capabilities: Capability
    relay_count: int = 1
    protocol_version: int = PROTOCOL_VERSION
    session: int = 0  # stamped by the link when it sends the frame

    def __post_init__(self) -> None:
        _check_u16("session", self.session)
        _check_u8("protocol_version", self.protocol_version)
        if len(self.firmware) != 3:
            raise ValueError(f"firmware must be (major, minor, patch), got {self.firmware}")
        for part in self.firmware:
            _check_u8("firmware version part", part)
        if not 0 <= int(self.capabilities) <= 0xFFFF:
            raise ValueError(f"capabilities must fit in u16, got {int(self.capabilities)}")
        if not 0 <= self.relay_count <= MAX_RELAYS:
            raise ValueError(f"relay_count must be 0..{MAX_RELAYS}, got {self.relay_count}")

    @property
    def firmware_version(self) -> str:
        """Firmware version as major.minor.patch."""
        return ".".join(str(part) for part in self.firmware)

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return _HELLO.pack(
            self.session,
            _wire("reason", self.reason),
            self.protocol_version,
            *self.firmware,
            int(self.capabilities),
            self.relay_count,
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, _HELLO.size)
        session, reason, version, major, minor, patch, caps, relays = _HELLO.unpack(payload)
        return _construct(
            cls.TYPE,
            lambda: cls(
                reason=HelloReason(reason),
                firmware=(major, minor, patch),
                capabilities=Capability(caps),
                relay_count=relays,
                protocol_version=version,
                session=session,
            ),
        )


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A code the guest typed and submitted with '#', as ASCII digits."""

    TYPE: ClassVar[MsgType] = MsgType.KEY_ENTRY
    code: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.code) <= MAX_CODE_LENGTH:
            raise ValueError(f"code must have 1..{MAX_CODE_LENGTH} digits, got {len(self.code)}")
        for index, char in enumerate(self.code):
            if char not in "0123456789":
                raise ValueError(f"character {index} is {char!r}, not an ASCII digit")

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return self.code.encode("ascii")

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        for index, byte in enumerate(payload):
            if not 0x30 <= byte <= 0x39:
                raise _bad_payload(cls.TYPE, f"byte {index} is 0x{byte:02x}, not an ASCII digit")
        return _construct(cls.TYPE, lambda: cls(payload.decode("ascii")))


@dataclass(frozen=True, slots=True)
class DoorContact:
    """The door contact changed."""

    TYPE: ClassVar[MsgType] = MsgType.DOOR_CONTACT
    state: DoorState

    @property
    def is_open(self) -> bool:
        """Whether the door reads open."""
        return self.state is DoorState.OPEN

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return bytes((_wire("state", self.state),))

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, 1)
        return cls(DoorState(payload[0]))


@dataclass(frozen=True, slots=True)
class Tamper:
    """The tamper switch changed."""

    TYPE: ClassVar[MsgType] = MsgType.TAMPER
    state: TamperState

    @property
    def active(self) -> bool:
        """Whether the enclosure reads opened."""
        return self.state is TamperState.ACTIVE

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return bytes((_wire("state", self.state),))

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, 1)
        return cls(TamperState(payload[0]))


@dataclass(frozen=True, slots=True)
class HostHello:
    """Host (re)connected: starts the host's sending session and asks for HELLO."""

    TYPE: ClassVar[MsgType] = MsgType.HOST_HELLO
    session: int = 0  # stamped by the link when it sends the frame

    def __post_init__(self) -> None:
        _check_u16("session", self.session)

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return self.session.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, 2)
        return cls(int.from_bytes(payload, "big"))


@dataclass(frozen=True, slots=True)
class Result:
    """The host's decision on the last KEY_ENTRY, for the guest."""

    TYPE: ClassVar[MsgType] = MsgType.RESULT
    outcome: Outcome

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return bytes((_wire("outcome", self.outcome),))

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, 1)
        return cls(Outcome(payload[0]))


_RELAY_PULSE: Final = struct.Struct(">BH")


@dataclass(frozen=True, slots=True)
class RelayPulse:
    """Energise a relay for duration_ms, then release it."""

    TYPE: ClassVar[MsgType] = MsgType.RELAY_PULSE
    relay: int
    duration_ms: int

    def __post_init__(self) -> None:
        if not 0 <= self.relay < MAX_RELAYS:
            raise ValueError(f"relay must be 0..{MAX_RELAYS - 1}, got {self.relay}")
        if not MIN_PULSE_MS <= self.duration_ms <= MAX_PULSE_MS:
            raise ValueError(
                f"duration_ms must be {MIN_PULSE_MS}..{MAX_PULSE_MS}, got {self.duration_ms}"
            )

    def to_bytes(self) -> bytes:
        """Return the payload."""
        return _RELAY_PULSE.pack(self.relay, self.duration_ms)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, _RELAY_PULSE.size)
        relay, duration = _RELAY_PULSE.unpack(payload)
        return _construct(cls.TYPE, lambda: cls(relay, duration))


_INDICATE: Final = struct.Struct(">BBH")


@dataclass(frozen=True, slots=True)
class Indicate:
    """Beep a pattern and show an LED colour for duration_ms (0: beep only)."""

    TYPE: ClassVar[MsgType] = MsgType.INDICATE
    pattern: BeepPattern
    colour: LedColour
    duration_ms: int

    def __post_init__(self) -> None:
        if not 0 <= self.duration_ms <= MAX_INDICATE_MS:
            raise ValueError(f"duration_ms must be 0..{MAX_INDICATE_MS}, got {self.duration_ms}")

    def to_bytes(self) -> bytes:
        """Return the payload."""
        pattern = _wire("pattern", self.pattern)
        return _INDICATE.pack(pattern, _wire("colour", self.colour), self.duration_ms)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse the payload."""
        _expect_len(cls.TYPE, payload, _INDICATE.size)
        pattern, colour, duration = _INDICATE.unpack(payload)
        return _construct(cls.TYPE, lambda: cls(BeepPattern(pattern), LedColour(colour), duration))


DeviceMessage: TypeAlias = Hello | Heartbeat | KeyEntry | DoorContact | Tamper
HostMessage: TypeAlias = HostHello | Result | RelayPulse | Indicate
ControlMessage: TypeAlias = Ack | Nak
Message: TypeAlias = DeviceMessage | HostMessage | ControlMessage

DEVICE_TYPES: Final = frozenset(
    {MsgType.HELLO, MsgType.HEARTBEAT, MsgType.KEY_ENTRY, MsgType.DOOR_CONTACT, MsgType.TAMPER}
)
HOST_TYPES: Final = frozenset(
    {MsgType.HOST_HELLO, MsgType.RESULT, MsgType.RELAY_PULSE, MsgType.INDICATE}
)
CONTROL_TYPES: Final = frozenset({MsgType.ACK, MsgType.NAK})

_DECODERS: Final[dict[MsgType, Callable[[bytes], Message]]] = {
    MsgType.ACK: Ack.from_bytes,
    MsgType.NAK: Nak.from_bytes,
    MsgType.HEARTBEAT: Heartbeat.from_bytes,
    MsgType.HELLO: Hello.from_bytes,
    MsgType.KEY_ENTRY: KeyEntry.from_bytes,
    MsgType.DOOR_CONTACT: DoorContact.from_bytes,
    MsgType.TAMPER: Tamper.from_bytes,
    MsgType.HOST_HELLO: HostHello.from_bytes,
    MsgType.RESULT: Result.from_bytes,
    MsgType.RELAY_PULSE: RelayPulse.from_bytes,
    MsgType.INDICATE: Indicate.from_bytes,
}


def decode_payload(msg_type: MsgType, payload: bytes) -> Message:
    """Return the message for a known type; raise FrameError(BAD_PAYLOAD) if it is malformed."""
    return _DECODERS[msg_type](payload)
