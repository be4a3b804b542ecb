"""Typed messages for the lock's log: the request, the count and the entries."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Self

from agent.locks.nuki.const import (
    CHALLENGE_LEN,
    NAME_LEN,
    Action,
    Command,
    Completion,
    KeypadSource,
    LogType,
    Trigger,
)
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


@register
@dataclass(frozen=True, slots=True)
class RequestLogEntries(Message):
    """Read log entries (challenge + PIN); total_count asks for a LogEntryCount first."""

    COMMAND: ClassVar[Command] = Command.REQUEST_LOG_ENTRIES
    HEAD: ClassVar[struct.Struct] = struct.Struct("<IHBB")
    start_index: int
    count: int
    descending: bool
    total_count: bool
    nonce: bytes
    pin: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, cls.HEAD.size + CHALLENGE_LEN + PIN.size, cls.COMMAND)
        start, count, order, total = cls.HEAD.unpack_from(payload)
        at = cls.HEAD.size
        nonce = payload[at : at + CHALLENGE_LEN]
        return cls(
            start, count, bool(order), bool(total), nonce, PIN.unpack_from(payload, at + 32)[0]
        )

    def to_bytes(self) -> bytes:
        """Encode."""
        head = self.HEAD.pack(self.start_index, self.count, self.descending, self.total_count)
        return head + self.nonce + PIN.pack(self.pin)


@register
@dataclass(frozen=True, slots=True)
class LogEntryCount(Message):
    """How many entries the lock holds."""

    COMMAND: ClassVar[Command] = Command.LOG_ENTRY_COUNT
    logging_enabled: bool
    count: int
    door_sensor_enabled: bool = False
    door_sensor_logging: bool = False

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 3, cls.COMMAND)
        enabled, count = struct.unpack_from("<BH", payload)
        sensor = len(payload) > 3 and bool(payload[3])
        sensor_log = len(payload) > 4 and bool(payload[4])
        return cls(bool(enabled), count, sensor, sensor_log)

    def to_bytes(self) -> bytes:
        """Encode."""
        return struct.pack(
            "<BHBB", self.logging_enabled, self.count, self.door_sensor_enabled,
            self.door_sensor_logging,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class KeypadEntry:
    """The data of a keypad action log entry."""

    action: Action
    source: KeypadSource
    completion: Completion
    code_id: int


@register
@dataclass(frozen=True, slots=True)
class LogEntry(Message):
    """One log entry; `data` depends on the type."""

    COMMAND: ClassVar[Command] = Command.LOG_ENTRY
    index: int
    timestamp: datetime | None
    auth_id: int
    name: str
    type: LogType
    data: bytes = b""

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse."""
        need(payload, 4 + 7 + 4 + NAME_LEN + 1, cls.COMMAND)
        (index,) = struct.unpack_from("<I", payload)
        (auth_id,) = struct.unpack_from("<I", payload, 11)
        name = unpack_name(payload[15 : 15 + NAME_LEN])
        kind = LogType(payload[15 + NAME_LEN])
        return cls(index, unpack_time(payload, 4), auth_id, name, kind, payload[16 + NAME_LEN :])

    def to_bytes(self) -> bytes:
        """Encode."""
        head = struct.pack("<I", self.index) + pack_time(self.timestamp)
        head += struct.pack("<I", self.auth_id) + pack_name(self.name, NAME_LEN)
        return head + bytes([self.type]) + self.data

    def keypad(self) -> KeypadEntry | None:
        """The keypad action of a KEYPAD_ACTION entry."""
        if self.type != LogType.KEYPAD_ACTION or len(self.data) < 5:
            return None
        action, source, completion, code_id = struct.unpack_from("<BBBH", self.data)
        return KeypadEntry(Action(action), KeypadSource(source), Completion(completion), code_id)

    def lock_action(self) -> tuple[Action, Trigger, int, Completion] | None:
        """(action, trigger, flags, completion) of a LOCK_ACTION entry."""
        if self.type != LogType.LOCK_ACTION or len(self.data) < 4:
            return None
        action, trigger, flags, completion = self.data[:4]
        return Action(action), Trigger(trigger), flags, Completion(completion)
