"""Reference keypad-controller behaviour as a sans-IO state machine (the emulator runs it)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import ClassVar

from firmware_bridge.constants import (
    HEARTBEAT_INTERVAL_S,
    KEY_INACTIVITY_TIMEOUT_S,
    MAX_CODE_LENGTH,
    MIN_CODE_LENGTH,
    RESULT_TIMEOUT_S,
)
from firmware_bridge.errors import LinkError
from firmware_bridge.link import LinkEndpoint, LinkOutput, Role
from firmware_bridge.messages import (
    ALL_CAPABILITIES,
    BeepPattern,
    Capability,
    DeviceMessage,
    DoorContact,
    DoorState,
    Heartbeat,
    Hello,
    HelloReason,
    HostHello,
    Indicate,
    KeyEntry,
    LedColour,
    Message,
    MsgType,
    Outcome,
    RelayPulse,
    Result,
    StatusFlags,
    Tamper,
    TamperState,
)

__all__ = [
    "ClearReason",
    "Effect",
    "EntryCleared",
    "EntrySubmitted",
    "FeedbackShown",
    "FrameRejected",
    "HostUnreachable",
    "Indicated",
    "KeyPressed",
    "KeypadDevice",
    "RelayPulsed",
    "RelayReleased",
]

KEYS = "0123456789*#"
FIRMWARE_VERSION = (1, 0, 0)

# What the guest sees and hears for each RESULT: (beep, LED colour, LED time in ms).
RESULT_INDICATION: dict[Outcome, tuple[BeepPattern, LedColour, int]] = {
    Outcome.GRANTED: (BeepPattern.DOUBLE, LedColour.GREEN, 3000),
    Outcome.DENIED: (BeepPattern.LONG, LedColour.RED, 2000),
    Outcome.LOCKED_OUT: (BeepPattern.ERROR, LedColour.RED, 5000),
    Outcome.ERROR: (BeepPattern.ERROR, LedColour.AMBER, 2000),
}
LOCAL_ERROR_INDICATION = (BeepPattern.ERROR, LedColour.RED, 1000)  # bad entry on the keypad
UNREACHABLE_INDICATION = (BeepPattern.ERROR, LedColour.AMBER, 2000)  # host did not answer


class ClearReason(enum.Enum):
    """Why a partly typed code was discarded."""

    STAR = "star"
    TIMEOUT = "timeout"
    OVERFLOW = "overflow"
    TOO_SHORT = "too_short"


@dataclass(frozen=True, slots=True)
class Effect:
    """Something observable the device did, stamped with the device clock."""

    KIND: ClassVar[str] = "effect"
    at: float

    def to_json(self) -> dict[str, object]:
        """Return the effect as a JSON-ready dict with a "kind" key."""
        body: dict[str, object] = {"kind": self.KIND}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, enum.IntEnum):
                value = value.name.lower()
            elif isinstance(value, enum.Enum):
                value = value.value
            body[item.name] = value
        return body


@dataclass(frozen=True, slots=True)
class KeyPressed(Effect):
    """A key went down."""

    KIND: ClassVar[str] = "key"
    key: str


@dataclass(frozen=True, slots=True)
class EntrySubmitted(Effect):
    """'#' sent the typed code to the host."""

    KIND: ClassVar[str] = "submitted"
    code: str


@dataclass(frozen=True, slots=True)
class EntryCleared(Effect):
    """A partial entry was discarded."""

    KIND: ClassVar[str] = "cleared"
    reason: ClearReason


@dataclass(frozen=True, slots=True)
class RelayPulsed(Effect):
    """A relay was energised for duration_ms."""

    KIND: ClassVar[str] = "relay_pulse"
    relay: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RelayReleased(Effect):
    """A relay pulse ended."""

    KIND: ClassVar[str] = "relay_release"
    relay: int


@dataclass(frozen=True, slots=True)
class FeedbackShown(Effect):
    """A RESULT from the host reached the guest."""

    KIND: ClassVar[str] = "feedback"
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Indicated(Effect):
    """The buzzer and LED signalled something; source is "result", "host" or "local"."""

    KIND: ClassVar[str] = "indicate"
    pattern: BeepPattern
    colour: LedColour
    duration_ms: int
    source: str


@dataclass(frozen=True, slots=True)
class HostUnreachable(Effect):
    """A submitted code got no answer from the host."""

    KIND: ClassVar[str] = "host_unreachable"
    detail: str


@dataclass(frozen=True, slots=True)
class FrameRejected(Effect):
    """Bytes from the host could not be used."""

    KIND: ClassVar[str] = "frame_rejected"
    detail: str


class KeypadDevice:
    """The keypad controller: keys, door/tamper inputs, relay, LED and buzzer, and its link."""

    def __init__(
        self,
        *,
        relay_count: int = 1,
        capabilities: Capability = ALL_CAPABILITIES,
        firmware: tuple[int, int, int] = FIRMWARE_VERSION,
        session_seed: int | None = None,
    ) -> None:
        self.relay_count = relay_count
        self.capabilities = capabilities
        self.firmware = firmware
        self._link = LinkEndpoint(Role.DEVICE, session_seed=session_seed, validate=self._refusal)
        self._effects: list[Effect] = []
        self._booted_at: float | None = None
        self._next_heartbeat = 0.0
        self._entry = ""
        self._last_key_at = 0.0
        self._awaiting_since: float | None = None
        self._relay_until: list[float | None] = [None] * relay_count
        self._led = LedColour.OFF
        self._led_until: float | None = None
        self.door_open = False
        self.tamper_active = False
        self.last_outcome: Outcome | None = None

    # -- observable state --------------------------------------------------------------------

    @property
    def entry(self) -> str:
        """Digits typed so far and not yet submitted."""
        return self._entry

    @property
    def led(self) -> LedColour:
        """Colour the LED shows now."""
        return self._led

    @property
    def awaiting_result(self) -> bool:
        """Whether a submitted code still waits for the host's RESULT."""
        return self._awaiting_since is not None

    @property
    def link(self) -> LinkEndpoint:
        """The device's link endpoint (for inspection)."""
        return self._link

    def relay_energised(self, relay: int = 0) -> bool:
        """Whether a relay is energised now."""
        return self._relay_until[relay] is not None

    def take_effects(self) -> list[Effect]:
        """Return and forget the effects recorded since the last call."""
        effects, self._effects = self._effects, []
        return effects

    # -- inputs ------------------------------------------------------------------------------

    def boot(self, now: float) -> bytes:
        """Start up: announce ourselves with HELLO(BOOT) and start the heartbeat."""
        self._booted_at = now
        self._next_heartbeat = now + HEARTBEAT_INTERVAL_S
        out = bytearray()
        self._send(self._hello(HelloReason.BOOT), now, out)
        return bytes(out)

    def press(self, key: str, now: float) -> bytes:
        """A key press: digits collect, '*' clears, '#' submits."""
        if len(key) != 1 or key not in KEYS:
            raise ValueError(f"no key {key!r} on the keypad (keys are {KEYS})")
        out = bytearray()
        self._effects.append(KeyPressed(now, key))
        self._last_key_at = now
        if key == "*":
            if self._entry:
                self._clear(ClearReason.STAR, now)
        elif key == "#":
            self._submit(now, out)
        elif len(self._entry) >= MAX_CODE_LENGTH:
            self._clear(ClearReason.OVERFLOW, now)
            self._indicate(*LOCAL_ERROR_INDICATION, "local", now)
        else:
            self._entry += key
        return bytes(out)

    def set_door(self, is_open: bool, now: float) -> bytes:
        """The door contact reads is_open; report a change."""
        if is_open == self.door_open:
            return b""
        self.door_open = is_open
        out = bytearray()
        self._send(DoorContact(DoorState.OPEN if is_open else DoorState.CLOSED), now, out)
        return bytes(out)

    def set_tamper(self, active: bool, now: float) -> bytes:
        """The tamper switch reads active; report a change."""
        if active == self.tamper_active:
            return b""
        self.tamper_active = active
        out = bytearray()
        self._send(Tamper(TamperState.ACTIVE if active else TamperState.CLEAR), now, out)
        return bytes(out)

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the host; return bytes to write back (ACKs, answers)."""
        out = bytearray()
        self._apply(self._link.receive(data, now), now, out)
        return bytes(out)

    def tick(self, now: float) -> bytes:
        """Run timers: retransmissions, relay release, timeouts, heartbeat."""
        out = bytearray()
        self._apply(self._link.poll(now), now, out)
        for relay, until in enumerate(self._relay_until):
            if until is not None and now >= until:
                self._relay_until[relay] = None
                self._effects.append(RelayReleased(now, relay))
        if self._led_until is not None and now >= self._led_until:
            self._led, self._led_until = LedColour.OFF, None
        if self._entry and now - self._last_key_at >= KEY_INACTIVITY_TIMEOUT_S:
            self._clear(ClearReason.TIMEOUT, now)
        if self._awaiting_since is not None and now - self._awaiting_since >= RESULT_TIMEOUT_S:
            self._unreachable(f"no RESULT within {RESULT_TIMEOUT_S:g} s", now)
        if self._booted_at is not None and now >= self._next_heartbeat:
            self._send(self._heartbeat(now), now, out)
            self._next_heartbeat = max(self._next_heartbeat + HEARTBEAT_INTERVAL_S, now)
        return bytes(out)

    def next_deadline(self) -> float | None:
        """Return when tick() next has work."""
        candidates = [self._link.next_deadline(), self._led_until, *self._relay_until]
        if self._booted_at is not None:
            candidates.append(self._next_heartbeat)
        if self._entry:
            candidates.append(self._last_key_at + KEY_INACTIVITY_TIMEOUT_S)
        if self._awaiting_since is not None:
            candidates.append(self._awaiting_since + RESULT_TIMEOUT_S)
        present = [c for c in candidates if c is not None]
        return min(present) if present else None

    # -- internals ---------------------------------------------------------------------------

    def _hello(self, reason: HelloReason) -> Hello:
        return Hello(reason, self.firmware, self.capabilities, self.relay_count)

    def _heartbeat(self, now: float) -> Heartbeat:
        flags = StatusFlags.NONE
        if self.door_open:
            flags |= StatusFlags.DOOR_OPEN
        if self.tamper_active:
            flags |= StatusFlags.TAMPER_ACTIVE
        if self._entry:
            flags |= StatusFlags.ENTRY_IN_PROGRESS
        if self._awaiting_since is not None:
            flags |= StatusFlags.AWAITING_RESULT
        relays = sum(1 << i for i, until in enumerate(self._relay_until) if until is not None)
        uptime = int(now - self._booted_at) if self._booted_at is not None else 0
        return Heartbeat(uptime, flags, relays)

    def _send(self, message: DeviceMessage, now: float, out: bytearray) -> None:
        try:
            result = self._link.send(message, now)
        except LinkError as exc:
            if message.TYPE is MsgType.KEY_ENTRY:
                self._unreachable(str(exc), now)
            return
        self._apply(result, now, out)

    def _apply(self, result: LinkOutput, now: float, out: bytearray) -> None:
        out += result.data
        for error in result.errors:
            self._effects.append(FrameRejected(now, str(error)))
        for message in result.delivered:
            self._handle(message, now, out)
        for failure in result.failed:
            if failure.msg_type is MsgType.KEY_ENTRY and self._awaiting_since is not None:
                self._unreachable(failure.reason, now)
        if result.resync:
            # Until a HOST_HELLO arrives our receiving side has no session, so say BOOT.
            synced = self._link.rx_session is not None
            reason = HelloReason.RESYNC if synced else HelloReason.BOOT
            self._send(self._hello(reason), now, out)

    def _handle(self, message: Message, now: float, out: bytearray) -> None:
        if isinstance(message, HostHello):
            self._send(self._hello(HelloReason.REQUESTED), now, out)
        elif isinstance(message, Result):
            self._awaiting_since = None
            self.last_outcome = message.outcome
            self._effects.append(FeedbackShown(now, message.outcome))
            indication = RESULT_INDICATION.get(message.outcome, RESULT_INDICATION[Outcome.ERROR])
            self._indicate(*indication, "result", now)
        elif isinstance(message, RelayPulse):
            self._relay_until[message.relay] = now + message.duration_ms / 1000
            self._effects.append(RelayPulsed(now, message.relay, message.duration_ms))
        elif isinstance(message, Indicate):
            self._indicate(message.pattern, message.colour, message.duration_ms, "host", now)

    def _refusal(self, message: Message) -> str | None:
        if isinstance(message, RelayPulse) and message.relay >= self.relay_count:
            return f"relay {message.relay} does not exist (this device has {self.relay_count})"
        return None

    def _submit(self, now: float, out: bytearray) -> None:
        if not self._entry:
            return
        if len(self._entry) < MIN_CODE_LENGTH:
            self._clear(ClearReason.TOO_SHORT, now)
            self._indicate(*LOCAL_ERROR_INDICATION, "local", now)
            return
        code, self._entry = self._entry, ""
        self._effects.append(EntrySubmitted(now, code))
        self._awaiting_since = now
        self._send(KeyEntry(code), now, out)

    def _clear(self, reason: ClearReason, now: float) -> None:
        self._entry = ""
        self._effects.append(EntryCleared(now, reason))

    def _unreachable(self, detail: str, now: float) -> None:
        self._awaiting_since = None
        self._effects.append(HostUnreachable(now, detail))
        self._indicate(*UNREACHABLE_INDICATION, "local", now)

    def _indicate(
        self, pattern: BeepPattern, colour: LedColour, duration_ms: int, source: str, now: float
    ) -> None:
        self._effects.append(Indicated(now, pattern, colour, duration_ms, source))
        if duration_ms > 0 and colour is not LedColour.UNKNOWN:
            self._led = colour
            self._led_until = now + duration_ms / 1000
