"""KeypadDevice: key collection, timeouts, relay pulses, feedback and its link, on a fake clock."""

from __future__ import annotations

from typing import TypeVar

import pytest

from firmware_bridge import cobs
from firmware_bridge.codec import Frame, FrameDecoder, pack_frame
from firmware_bridge.constants import (
    HEARTBEAT_INTERVAL_S,
    KEY_INACTIVITY_TIMEOUT_S,
    MAX_CODE_LENGTH,
    RESULT_TIMEOUT_S,
)
from firmware_bridge.device import (
    ClearReason,
    Effect,
    EntryCleared,
    EntrySubmitted,
    FeedbackShown,
    HostUnreachable,
    Indicated,
    KeypadDevice,
    RelayPulsed,
    RelayReleased,
)
from firmware_bridge.errors import NakReason
from firmware_bridge.link import LinkEndpoint, Role
from firmware_bridge.messages import (
    ALL_CAPABILITIES,
    BeepPattern,
    DoorContact,
    DoorState,
    Heartbeat,
    Hello,
    HelloReason,
    HostHello,
    HostMessage,
    Indicate,
    KeyEntry,
    LedColour,
    Message,
    Nak,
    Outcome,
    RelayPulse,
    Result,
    StatusFlags,
    Tamper,
    TamperState,
)

E = TypeVar("E", bound=Effect)


class Bench:
    """A KeypadDevice wired to a host link endpoint, with a hand-driven clock."""

    def __init__(self, *, host_present: bool = True) -> None:
        self.now = 100.0
        self.device = KeypadDevice(session_seed=1)
        self.host = LinkEndpoint(Role.HOST, session_seed=2)
        self.host_present = host_present
        self.host_got: list[Message] = []
        self.host_failed: list[NakReason | None] = []
        self.effects: list[Effect] = []

    def to_host(self, data: bytes) -> None:
        if not data or not self.host_present:
            return
        out = self.host.receive(data, self.now)
        self.host_got += out.delivered
        self.host_failed += [f.nak for f in out.failed]
        for message in out.delivered:
            if isinstance(message, Hello) and message.reason is HelloReason.BOOT:
                self.host_sends(HostHello())
        self.to_device(out.data)

    def to_device(self, data: bytes) -> None:
        if data:
            self.to_host(self.device.receive(data, self.now))

    def host_sends(self, message: HostMessage) -> None:
        self.to_device(self.host.send(message, self.now).data)

    def boot(self) -> Bench:
        self.to_host(self.device.boot(self.now))
        return self

    def press(self, keys: str) -> None:
        for key in keys:
            self.to_host(self.device.press(key, self.now))

    def advance(self, seconds: float) -> None:
        """Let time pass, running the device's timers exactly when they fall due."""
        target = self.now + seconds
        while (deadline := self.device.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            self.to_host(self.device.tick(self.now))
        self.now = target

    def take(self) -> list[Effect]:
        self.effects += self.device.take_effects()
        return self.effects

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.take() if isinstance(e, kind)]


def led(bench: Bench) -> LedColour:
    """The LED colour now (a call, so type narrowing does not outlive the clock moving)."""
    return bench.device.led


@pytest.fixture
def bench() -> Bench:
    return Bench().boot()


def key_entries(bench: Bench) -> list[str]:
    return [m.code for m in bench.host_got if isinstance(m, KeyEntry)]


def test_boot_announces_the_device_and_host_hello_gets_a_requested_hello(bench: Bench) -> None:
    hellos = [m for m in bench.host_got if isinstance(m, Hello)]
    assert [h.reason for h in hellos] == [HelloReason.BOOT, HelloReason.REQUESTED]
    assert hellos[0].capabilities == ALL_CAPABILITIES
    assert hellos[0].relay_count == 1
    assert bench.device.link.rx_session == bench.host.tx_session


def test_digits_then_hash_send_the_code(bench: Bench) -> None:
    bench.press("123456")
    assert bench.device.entry == "123456"
    assert key_entries(bench) == []
    bench.press("#")
    assert key_entries(bench) == ["123456"]
    assert bench.device.entry == ""
    assert bench.device.awaiting_result
    assert bench.of(EntrySubmitted)[0] == EntrySubmitted(bench.now, "123456")


def test_star_clears_the_entry(bench: Bench) -> None:
    bench.press("12*3456#")
    assert key_entries(bench) == ["3456"]
    assert [e.reason for e in bench.of(EntryCleared)] == [ClearReason.STAR]


def test_inactivity_clears_a_partial_entry(bench: Bench) -> None:
    bench.press("12")
    bench.advance(KEY_INACTIVITY_TIMEOUT_S - 0.01)
    assert bench.device.entry == "12"
    bench.press("3")  # a key restarts the timeout
    bench.advance(KEY_INACTIVITY_TIMEOUT_S - 0.01)
    assert bench.device.entry == "123"
    bench.advance(0.02)
    assert bench.device.entry == ""
    assert [e.reason for e in bench.of(EntryCleared)] == [ClearReason.TIMEOUT]
    bench.press("#")
    assert key_entries(bench) == []


def test_longest_code_is_sent_and_one_more_digit_clears(bench: Bench) -> None:
    longest = "1234567890" + "12"
    assert len(longest) == MAX_CODE_LENGTH
    bench.press(longest + "#")
    assert key_entries(bench) == [longest]
    bench.press(longest + "3")
    assert bench.device.entry == ""
    assert [e.reason for e in bench.of(EntryCleared)] == [ClearReason.OVERFLOW]
    assert bench.of(Indicated)[-1].colour is LedColour.RED
    bench.press("#")
    assert key_entries(bench) == [longest]


def test_too_short_code_is_rejected_on_the_device(bench: Bench) -> None:
    bench.press("123#")
    assert key_entries(bench) == []
    assert [e.reason for e in bench.of(EntryCleared)] == [ClearReason.TOO_SHORT]


def test_hash_alone_does_nothing(bench: Bench) -> None:
    bench.press("#")
    assert key_entries(bench) == []
    assert bench.of(EntryCleared) == []


def test_unknown_key_is_an_error(bench: Bench) -> None:
    with pytest.raises(ValueError, match="no key 'A' on the keypad"):
        bench.device.press("A", bench.now)


def test_relay_pulse_energises_then_releases_the_relay(bench: Bench) -> None:
    bench.host_sends(RelayPulse(0, 3000))
    assert bench.device.relay_energised(0)
    bench.advance(2.99)
    assert bench.device.relay_energised(0)
    bench.advance(0.02)
    assert not bench.device.relay_energised(0)
    assert [type(e) for e in bench.take() if isinstance(e, RelayPulsed | RelayReleased)] == [
        RelayPulsed,
        RelayReleased,
    ]


def test_a_second_pulse_restarts_the_timer(bench: Bench) -> None:
    bench.host_sends(RelayPulse(0, 1000))
    bench.advance(0.8)
    bench.host_sends(RelayPulse(0, 1000))
    bench.advance(0.9)
    assert bench.device.relay_energised(0)
    bench.advance(0.2)
    assert not bench.device.relay_energised(0)


def test_pulse_for_a_missing_relay_is_refused(bench: Bench) -> None:
    bench.host_sends(RelayPulse(2, 1000))
    assert bench.host_failed == [NakReason.BAD_PAYLOAD]
    assert bench.of(RelayPulsed) == []


def test_pulse_longer_than_the_bound_is_refused_on_the_wire(bench: Bench) -> None:
    seq = 1  # the first frame after HOST_HELLO
    frame = b"\x00" + cobs.encode(pack_frame(1, 0x22, seq, b"\x00\x4e\x20")) + b"\x00"
    reply = bench.device.receive(frame, bench.now)
    assert FrameDecoder().feed(reply) == [Frame(0, Nak(seq, 0x22, NakReason.BAD_PAYLOAD))]
    assert not bench.device.relay_energised(0)


def test_result_is_shown_to_the_guest(bench: Bench) -> None:
    bench.press("123456#")
    bench.host_sends(Result(Outcome.GRANTED))
    assert bench.of(FeedbackShown) == [FeedbackShown(bench.now, Outcome.GRANTED)]
    assert led(bench) is LedColour.GREEN
    assert not bench.device.awaiting_result
    bench.advance(3.01)
    assert led(bench) is LedColour.OFF


def test_no_result_in_time_shows_host_unreachable(bench: Bench) -> None:
    bench.press("123456#")
    bench.advance(RESULT_TIMEOUT_S + 0.01)
    (unreachable,) = bench.of(HostUnreachable)
    assert "no RESULT within 5 s" in unreachable.detail
    assert led(bench) is LedColour.AMBER


def test_undeliverable_code_shows_host_unreachable() -> None:
    bench = Bench(host_present=False).boot()
    bench.advance(1.5)  # the BOOT hello was not answered
    bench.press("123456#")
    bench.advance(1.5)
    assert bench.of(HostUnreachable)
    assert not bench.device.awaiting_result


def test_heartbeats_report_inputs_every_interval(bench: Bench) -> None:
    bench.to_host(bench.device.set_door(True, bench.now))
    bench.advance(HEARTBEAT_INTERVAL_S * 3 + 0.01)
    beats = [m for m in bench.host_got if isinstance(m, Heartbeat)]
    assert [b.uptime_s for b in beats] == [1, 2, 3]
    assert all(b.flags == StatusFlags.DOOR_OPEN for b in beats)


def test_door_and_tamper_changes_are_reported_once(bench: Bench) -> None:
    bench.to_host(bench.device.set_door(True, bench.now))
    assert bench.device.set_door(True, bench.now) == b""
    bench.to_host(bench.device.set_tamper(True, bench.now))
    bench.to_host(bench.device.set_door(False, bench.now))
    events = [m for m in bench.host_got if isinstance(m, DoorContact | Tamper)]
    assert events == [
        DoorContact(DoorState.OPEN),
        Tamper(TamperState.ACTIVE),
        DoorContact(DoorState.CLOSED),
    ]


def test_indicate_from_host(bench: Bench) -> None:
    bench.host_sends(Indicate(BeepPattern.SHORT, LedColour.BLUE, 500))
    assert led(bench) is LedColour.BLUE
    assert bench.of(Indicated)[-1].source == "host"
    bench.advance(0.51)
    assert led(bench) is LedColour.OFF


def test_device_that_never_heard_the_host_keeps_announcing_boot() -> None:
    bench = Bench(host_present=False).boot()
    bench.host_present = True
    bench.advance(1.01)  # the first HELLO gave up; the next one still says BOOT
    hellos = [m for m in bench.host_got if isinstance(m, Hello)]
    assert [h.reason for h in hellos] == [HelloReason.BOOT, HelloReason.REQUESTED]
    assert bench.device.link.rx_session == bench.host.tx_session


def test_effects_serialise_to_json(bench: Bench) -> None:
    bench.host_sends(RelayPulse(0, 700))
    bench.host_sends(Result(Outcome.LOCKED_OUT))
    kinds = [e.to_json() for e in bench.take()]
    assert {"kind": "relay_pulse", "at": bench.now, "relay": 0, "duration_ms": 700} in kinds
    assert {"kind": "feedback", "at": bench.now, "outcome": "locked_out"} in kinds
