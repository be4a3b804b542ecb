"""Typed messages for Nuki Keypad codes, which are stored and checked in the lock."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Final, Self

from agent.locks.nuki.const import CHALLENGE_LEN, KEYPAD_NAME_LEN, Command
from agent.locks.nuki.messages import (
    PIN,
    Message,
    need,
    pack_name,
    pack_time,
    register,
    unpack_name,
    unpack_time,
)

EVERY_DAY: Final = 0  # weekdays bitmap: bit 6 Monday … bit 0 Sunday; 0 means every day


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """When a keypad code works: an optional date range plus optional weekdays and hours."""

    SIZE: ClassVar[int] = 1 + 7 + 7 + 1 + 4
    time_limited: bool = False
    allowed_from: datetime | None = None
    allowed_until: datetime | None = None
    weekdays: int = EVERY_DAY
    from_time: tuple[int, int] = (0, 0)
    until_time: tuple[int, int] = (0, 0)

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> Self:
        """Parse the 20-byte window at offset."""
        limited = bool(data[offset])
        start, end = unpack_time(data, offset + 1), unpack_time(data, offset + 8)
        weekdays, fh, fm, uh, um = data[offset + 15 : offset + 20]
        return cls(limited, start, end, weekdays, (fh, fm), (uh, um))

    def to_bytes(self) -> bytes:
        """Encode (fixed size whatever time_limited says)."""
        return (
            bytes([self.time_limited])
            + pack_time(self.allowed_from)
            + pack_time(self.allowed_until)
            + bytes([self.weekdays, *self.from_time, *self.until_time])
        )


@register
@dataclass(frozen=True, slots=True)
class AddKeypadCode(Message):
    """Add a code (challenge + PIN); answered with KeypadCodeID."""

    COMMAND: ClassVar[Command] = Command.ADD_KEYPAD_CODE
    code: int
    name: str
    window: TimeWindow
    nonce: bytes
    pin: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        at = 4 + KEYPAD_NAME_LEN + TimeWindow.SIZE
        need(payload, at + CHALLENGE_LEN + PIN.size, cls.COMMAND)
        (code,) = struct.unpack_from("<I", payload)
        name = unpack_name(payload[4 : 4 + KEYPAD_NAME_LEN])
        window = TimeWindow.from_bytes(payload, 4 + KEYPAD_NAME_LEN)
        nonce = payload[at : at + CHALLENGE_LEN]
        return cls(code, name, window, nonce, PIN.unpack_from(payload, at + CHALLENGE_LEN)[0])

    def to_bytes(self) -> bytes:
        """Encode."""
        head = struct.pack("<I", self.code) + pack_name(self.name, KEYPAD_NAME_LEN)
        return head + self.window.to_bytes() + self.nonce + PIN.pack(self.pin)


@register
@dataclass(frozen=True, slots=True)
class KeypadCodeID(Message):
    """The id the lock gave a new code."""

    COMMAND: ClassVar[Command] = Command.KEYPAD_CODE_ID
    code_id: int
    created: datetime | None = None

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse (the creation time is optional)."""
        need(payload, 2, cls.COMMAND)
        created = unpack_time(payload, 2) if len(payload) >= 9 else None
        return cls(struct.unpack_from("<H", payload)[0], created)

    def to_bytes(self) -> bytes:
        """Encode."""
        return struct.pack("<H", self.code_id) + pack_time(self.created)


@register
@dataclass(frozen=True, slots=True)
class RequestKeypadCodes(Message):
    """List codes from offset (challenge + PIN): KeypadCodeCount, then one KeypadCode each."""

    COMMAND: ClassVar[Command] = Command.REQUEST_KEYPAD_CODES
    offset: int
    count: int
    nonce: bytes
    pin: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 4 + CHALLENGE_LEN + PIN.size, cls.COMMAND)
        offset, count = struct.unpack_from("<HH", payload)
        (pin,) = PIN.unpack_from(payload, 4 + CHALLENGE_LEN)
        return cls(offset, count, payload[4 : 4 + CHALLENGE_LEN], pin)

    def to_bytes(self) -> bytes:
        """Encode."""
        return struct.pack("<HH", self.offset, self.count) + self.nonce + PIN.pack(self.pin)


@register
@dataclass(frozen=True, slots=True)
class KeypadCodeCount(Message):
    """How many codes the lock holds."""

    COMMAND: ClassVar[Command] = Command.KEYPAD_CODE_COUNT
    count: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 2, cls.COMMAND)
        return cls(struct.unpack_from("<H", payload)[0])

    def to_bytes(self) -> bytes:
        """Encode."""
        return struct.pack("<H", self.count)


@register
@dataclass(frozen=True, slots=True)
class KeypadCode(Message):
    """One code as the lock holds it."""

    COMMAND: ClassVar[Command] = Command.KEYPAD_CODE
    code_id: int
    code: int
    name: str
    enabled: bool
    window: TimeWindow
    created: datetime | None = None
    last_active: datetime | None = None
    lock_count: int = 0

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        at = 2 + 4 + KEYPAD_NAME_LEN
        need(payload, at + 1 + 7 + 7 + 2 + TimeWindow.SIZE, cls.COMMAND)
        code_id, code = struct.unpack_from("<HI", payload)
        name = unpack_name(payload[6:at])
        (lock_count,) = struct.unpack_from("<H", payload, at + 15)
        return cls(
            code_id,
            code,
            name,
            bool(payload[at]),
            TimeWindow.from_bytes(payload, at + 17),
            unpack_time(payload, at + 1),
            unpack_time(payload, at + 8),
            lock_count,
        )

    def to_bytes(self) -> bytes:
        """Encode."""
        head = struct.pack("<HI", self.code_id, self.code) + pack_name(self.name, KEYPAD_NAME_LEN)
        head += bytes([self.enabled]) + pack_time(self.created) + pack_time(self.last_active)
        return head + struct.pack("<H", self.lock_count) + self.window.to_bytes()


@register
@dataclass(frozen=True, slots=True)
class UpdateKeypadCode(Message):
    """Change a code in place (challenge + PIN); answered COMPLETE."""

    COMMAND: ClassVar[Command] = Command.UPDATE_KEYPAD_CODE
    code_id: int
    code: int
    name: str
    enabled: bool
    window: TimeWindow
    nonce: bytes
    pin: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        at = 2 + 4 + KEYPAD_NAME_LEN + 1 + TimeWindow.SIZE
        need(payload, at + CHALLENGE_LEN + PIN.size, cls.COMMAND)
        code_id, code = struct.unpack_from("<HI", payload)
        name = unpack_name(payload[6 : 6 + KEYPAD_NAME_LEN])
        enabled = bool(payload[6 + KEYPAD_NAME_LEN])
        window = TimeWindow.from_bytes(payload, 7 + KEYPAD_NAME_LEN)
        nonce = payload[at : at + CHALLENGE_LEN]
        pin = PIN.unpack_from(payload, at + CHALLENGE_LEN)[0]
        return cls(code_id, code, name, enabled, window, nonce, pin)

    def to_bytes(self) -> bytes:
        """Encode."""
        head = struct.pack("<HI", self.code_id, self.code) + pack_name(self.name, KEYPAD_NAME_LEN)
        head += bytes([self.enabled]) + self.window.to_bytes()
        return head + self.nonce + PIN.pack(self.pin)


@register
@dataclass(frozen=True, slots=True)
class RemoveKeypadCode(Message):
    """Delete a code (challenge + PIN); answered COMPLETE."""

    COMMAND: ClassVar[Command] = Command.REMOVE_KEYPAD_CODE
    code_id: int
    nonce: bytes
    pin: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 2 + CHALLENGE_LEN + PIN.size, cls.COMMAND)
        (code_id,) = struct.unpack_from("<H", payload)
        pin = PIN.unpack_from(payload, 2 + CHALLENGE_LEN)[0]
        return cls(code_id, payload[2 : 2 + CHALLENGE_LEN], pin)

    def to_bytes(self) -> bytes:
        """Encode."""
        return struct.pack("<H", self.code_id) + self.nonce + PIN.pack(self.pin)
