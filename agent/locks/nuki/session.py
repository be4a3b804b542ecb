"""Request patterns over an encrypted channel, sans-IO, one operation at a time.

A challenge is single-use and two interleaved operations fail with BAD_NONCE, so a Session runs
exactly one Exchange at a time. Messages that do not belong to the current exchange (a late
Status of the previous one, a state push) are reported as ignored, never taken as an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from agent.locks.nuki.channel import EncryptedChannel
from agent.locks.nuki.const import Command, StatusCode
from agent.locks.nuki.errors import NukiLockError
from agent.locks.nuki.keypad_messages import KeypadCode, KeypadCodeCount
from agent.locks.nuki.log_messages import (
    LogEntry,
    LogEntryCount,
)
from agent.locks.nuki.messages import (
    Challenge,
    ErrorReport,
    Message,
    RequestData,
    Status,
)


class Pattern(Enum):
    """How a request is asked."""

    PLAIN = auto()  # RequestData(command)
    CHALLENGE = auto()  # RequestData(Challenge) → nK, then the command with nK
    CHALLENGE_PIN = auto()  # … with nK and the security PIN


class Until(Enum):
    """When the answer to a request is complete."""

    ONE = auto()  # the first message of the answer type
    COMPLETE = auto()  # Status COMPLETE (ACCEPTED and pushes before it)
    COUNTED = auto()  # a count message, then that many items (or COMPLETE)


@dataclass(frozen=True, slots=True)
class Request:
    """One operation: how to build its command from a challenge, and how its answer ends."""

    name: str
    pattern: Pattern
    build: Callable[[bytes], Message]
    until: Until
    answer: type[Message] | None = None  # for ONE
    limit: int | None = None  # for COUNTED: the most items asked for
    offset: int = 0  # for COUNTED: items skipped before the first one sent
    idempotent: bool = True  # whether sending the command twice is harmless


# --- what handling a message yields -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Write this frame."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    """The lock accepted an action: from here on it must never be resent."""


@dataclass(frozen=True, slots=True)
class Progress:
    """A message inside an answer (a state push, a count)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Finished:
    """The answer is complete."""

    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class Failed:
    """The lock refused the request."""

    error: NukiLockError


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message that belongs to no current exchange."""

    message: Message


Outcome = Send | Accepted | Progress | Finished | Failed | Ignored


class Phase(Enum):
    """Where an exchange stands."""

    CHALLENGE = auto()
    ANSWER = auto()
    DONE = auto()


@dataclass(slots=True)
class Exchange:
    """The running state of one request."""

    request: Request
    phase: Phase
    messages: list[Message] = field(default_factory=list)
    accepted: bool = False
    expected_items: int | None = None
    command_sent: bool = False


class SessionBusy(RuntimeError):
    """A second operation was started before the first ended (it would get BAD_NONCE)."""


class Session:
    """Runs request patterns on one authorization's encrypted channel."""

    def __init__(self, channel: EncryptedChannel) -> None:
        self.channel = channel
        self.current: Exchange | None = None

    def begin(self, request: Request) -> bytes:
        """Start an operation; return the first frame to write."""
        if self.current is not None:
            raise SessionBusy(f"{self.current.request.name} still running")
        if request.pattern is Pattern.PLAIN:
            self.current = Exchange(request, Phase.ANSWER, command_sent=True)
            return self.channel.encode(request.build(b""))
        self.current = Exchange(request, Phase.CHALLENGE)
        return self.channel.encode(RequestData(Command.CHALLENGE))

    def abort(self) -> Exchange | None:
        """Drop the current operation (timeout, disconnect); return it."""
        exchange, self.current = self.current, None
        return exchange

    def handle(self, message: Message) -> list[Outcome]:
        """Advance the current exchange on a message from the lock."""
        exchange = self.current
        if exchange is None:
            return [Ignored(message)]
        if isinstance(message, ErrorReport):
            self.current = None
            exchange.phase = Phase.DONE
            return [Failed(NukiLockError(message.code, message.command))]
        if exchange.phase is Phase.CHALLENGE:
            if not isinstance(message, Challenge):
                return [Ignored(message)]
            exchange.phase = Phase.ANSWER
            exchange.command_sent = True
            return [Send(self.channel.encode(exchange.request.build(message.value)))]
        return self._answer(exchange, message)

    def _answer(self, exchange: Exchange, message: Message) -> list[Outcome]:
        request = exchange.request
        if request.until is Until.ONE:
            if request.answer is not None and not isinstance(message, request.answer):
                return [Ignored(message)]
            return self._finish(exchange, message)
        if request.until is Until.COMPLETE:
            if isinstance(message, Status):
                if message.status == StatusCode.ACCEPTED:
                    exchange.accepted = True
                    return [Accepted()]
                if message.status == StatusCode.COMPLETE:
                    return self._finish(exchange, None)
                return [Ignored(message)]
            exchange.messages.append(message)
            return [Progress(message)]
        return self._counted(exchange, message)

    def _counted(self, exchange: Exchange, message: Message) -> list[Outcome]:
        if isinstance(message, KeypadCodeCount | LogEntryCount):
            request = exchange.request
            available = max(0, message.count - request.offset)
            limit = request.limit
            exchange.expected_items = available if limit is None else min(available, limit)
            exchange.messages.append(message)
            if exchange.expected_items == 0:
                return self._finish(exchange, None)
            return [Progress(message)]
        if isinstance(message, KeypadCode | LogEntry):
            exchange.messages.append(message)
            items = len(exchange.messages) - 1
            if exchange.expected_items is not None and items >= exchange.expected_items:
                return self._finish(exchange, None)
            return [Progress(message)]
        if isinstance(message, Status) and message.status == StatusCode.COMPLETE:
            return self._finish(exchange, None)
        return [Ignored(message)]

    def _finish(self, exchange: Exchange, last: Message | None) -> list[Outcome]:
        if last is not None:
            exchange.messages.append(last)
        exchange.phase = Phase.DONE
        self.current = None
        return [Finished(tuple(exchange.messages))]
