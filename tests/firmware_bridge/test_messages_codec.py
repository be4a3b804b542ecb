"""Messages and frames: round trips, the PROTOCOL.md vectors, field bounds, unknown values."""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import firmware_bridge
from firmware_bridge import cobs
from firmware_bridge.codec import Frame, FrameDecoder, decode_frame, encode_frame, pack_frame
from firmware_bridge.constants import MAX_ENCODED_LEN, MAX_PAYLOAD_LEN
from firmware_bridge.errors import FrameError, FrameErrorReason, NakReason
from firmware_bridge.messages import (
    Ack,
    BeepPattern,
    Capability,
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
    Nak,
    Outcome,
    RelayPulse,
    Result,
    StatusFlags,
    Tamper,
    TamperState,
)

PROTOCOL_MD = Path(firmware_bridge.__file__).with_name("PROTOCOL.md")


E = TypeVar("E", bound=enum.IntEnum)


def known(enum_type: type[E]) -> st.SearchStrategy[E]:
    return st.sampled_from([m for m in enum_type if m.value >= 0])


u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)

MESSAGES: st.SearchStrategy[Message] = st.one_of(
    st.builds(Ack, u8, u16),
    st.builds(Nak, u8, u8, known(NakReason), u8),
    st.builds(Heartbeat, st.integers(0, 0xFFFF_FFFF), st.integers(0, 0xFF).map(StatusFlags), u8),
    st.builds(
        Hello,
        known(HelloReason),
        st.tuples(u8, u8, u8),
        u16.map(Capability),
        st.integers(0, 8),
        u8,
        u16,
    ),
    st.builds(KeyEntry, st.text("0123456789", min_size=1, max_size=12)),
    st.builds(DoorContact, known(DoorState)),
    st.builds(Tamper, known(TamperState)),
    st.builds(HostHello, u16),
    st.builds(Result, known(Outcome)),
    st.builds(RelayPulse, st.integers(0, 7), st.integers(50, 10_000)),
    st.builds(Indicate, known(BeepPattern), known(LedColour), st.integers(0, 10_000)),
)


@given(MESSAGES, u8)
def test_every_message_round_trips_through_a_frame(message: Message, seq: int) -> None:
    wire = encode_frame(message, seq)
    assert wire[0] == 0
    assert wire[-1] == 0
    assert 0 not in wire[1:-1]
    assert len(wire) - 2 <= MAX_ENCODED_LEN
    assert FrameDecoder().feed(wire) == [Frame(seq=seq, message=message)]
    assert type(message).from_bytes(message.to_bytes()) == message


def test_every_type_has_a_message_class() -> None:
    covered = {type(m).TYPE for m in (
        Ack(0, 0), Nak(0, 0, NakReason.BAD_PAYLOAD), Heartbeat(0),
        Hello(HelloReason.BOOT, (1, 0, 0), Capability.KEYPAD), KeyEntry("1"),
        DoorContact(DoorState.OPEN), Tamper(TamperState.CLEAR), HostHello(),
        Result(Outcome.DENIED), RelayPulse(0, 100), Indicate(BeepPattern.NONE, LedColour.OFF, 0),
    )}  # fmt: skip
    assert covered == set(MsgType)


def documented_vectors() -> dict[str, str]:
    """Map each worked example's heading to its 'on the wire' hex in PROTOCOL.md."""
    text = PROTOCOL_MD.read_text()
    pattern = r"\*\*(.+?)\*\*\n```\n(?:.*\n)*?on the wire\s+([0-9A-F ]+)\n"
    return {title: wire.strip() for title, wire in re.findall(pattern, text)}


@pytest.mark.parametrize(
    ("title", "message", "seq"),
    [
        ("RELAY_PULSE, relay 0, 3000 ms, seq 5 (host → device)", RelayPulse(0, 3000), 5),
        ('KEY_ENTRY "123456", seq 1 (device → host)', KeyEntry("123456"), 1),
        ("ACK of seq 5 in session 0x1234", Ack(5, 0x1234), 0),
        ("HOST_HELLO, session 0x1234", HostHello(0x1234), 0),
    ],
)
def test_protocol_md_worked_examples(title: str, message: Message, seq: int) -> None:
    documented = documented_vectors()[title]
    assert encode_frame(message, seq).hex(" ").upper() == documented
    assert FrameDecoder().feed(bytes.fromhex(documented)) == [Frame(seq, message)]


def test_worked_example_step_by_step() -> None:
    frame = pack_frame(1, 0x22, 5, bytes.fromhex("000BB8"))
    assert frame == bytes.fromhex("01 22 05 00 0B B8 41 EB")
    assert encode_frame(RelayPulse(0, 3000), 5) == bytes.fromhex("00 04 01 22 05 05 0B B8 41 EB 00")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: RelayPulse(0, 49), "duration_ms must be 50..10000, got 49"),
        (lambda: RelayPulse(0, 10_001), "duration_ms must be 50..10000"),
        (lambda: RelayPulse(8, 100), "relay must be 0..7, got 8"),
        (lambda: KeyEntry(""), "code must have 1..12 digits, got 0"),
        (lambda: KeyEntry("1" * 13), "code must have 1..12 digits, got 13"),
        (lambda: KeyEntry("12a4"), "character 2 is 'a', not an ASCII digit"),
        (lambda: Indicate(BeepPattern.SHORT, LedColour.RED, 10_001), "duration_ms must be"),
        (lambda: Ack(256, 0), "acked_seq must be 0..255"),
        (lambda: HostHello(0x10000), "session must be 0..65535"),
        (lambda: Heartbeat(-1), "uptime_s must fit in u32"),
    ],
)
def test_out_of_range_fields_are_refused_at_construction(build: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


def test_unknown_values_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        Result(Outcome.UNKNOWN).to_bytes()


@pytest.mark.parametrize(
    ("type_code", "payload", "expected"),
    [
        (MsgType.RESULT, b"\x09", Result(Outcome.UNKNOWN)),
        (MsgType.DOOR_CONTACT, b"\x07", DoorContact(DoorState.UNKNOWN)),
        (MsgType.TAMPER, b"\xff", Tamper(TamperState.UNKNOWN)),
        (
            MsgType.INDICATE,
            b"\x63\x63\x00\x10",
            Indicate(BeepPattern.UNKNOWN, LedColour.UNKNOWN, 16),
        ),
        (MsgType.NAK, b"\x01\x11\x77\x00", Nak(1, 0x11, NakReason.UNKNOWN)),
    ],
)
def test_unknown_enum_values_decode_to_unknown(
    type_code: MsgType, payload: bytes, expected: Message
) -> None:
    wire = b"\x00" + cobs.encode(pack_frame(1, type_code, 3, payload)) + b"\x00"
    assert FrameDecoder().feed(wire) == [Frame(3, expected)]


def test_unknown_capability_and_flag_bits_are_kept() -> None:
    hello = Hello(HelloReason.BOOT, (2, 1, 0), Capability(0x8001))
    decoded = Hello.from_bytes(hello.to_bytes())
    assert int(decoded.capabilities) == 0x8001
    assert Capability.KEYPAD in decoded.capabilities
    heartbeat = Heartbeat.from_bytes(Heartbeat(5, StatusFlags(0x81)).to_bytes())
    assert heartbeat.door_open
    assert int(heartbeat.flags) == 0x81


@pytest.mark.parametrize(
    ("type_code", "payload", "detail"),
    [
        (MsgType.RELAY_PULSE, b"\x00\x00\x10", "duration_ms must be 50..10000, got 16 (seq 3)"),
        (MsgType.RELAY_PULSE, b"\x00\x01", "RELAY_PULSE payload: 2 bytes, expected 3 (seq 3)"),
        (MsgType.KEY_ENTRY, b"12#4", "byte 2 is 0x23, not an ASCII digit (seq 3)"),
        (MsgType.KEY_ENTRY, b"", "KEY_ENTRY payload: code must have 1..12 digits, got 0 (seq 3)"),
        (MsgType.HELLO, b"\x00" * 9, "HELLO payload: 9 bytes, expected 10 (seq 3)"),
        (MsgType.HELLO, bytes.fromhex("0000 00 01 010000 003f 09"), "relay_count must be 0..8"),
    ],
)
def test_bad_payloads_are_reported_with_the_header(
    type_code: MsgType, payload: bytes, detail: str
) -> None:
    error = decode_frame(cobs.encode(pack_frame(1, type_code, 3, payload)))
    assert isinstance(error, FrameError)
    assert error.reason is FrameErrorReason.BAD_PAYLOAD
    assert detail in error.detail
    assert error.header is not None
    assert (error.header.type_code, error.header.seq) == (type_code, 3)


def test_pack_frame_refuses_oversized_payload() -> None:
    with pytest.raises(ValueError, match="payload is 65 bytes, the limit is 64"):
        pack_frame(1, 0x11, 0, b"1" * (MAX_PAYLOAD_LEN + 1))
