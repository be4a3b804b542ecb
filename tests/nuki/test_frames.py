"""Framing and reassembly, sans-IO: byte-at-a-time, random chunks, damaged and replayed frames."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.locks.nuki import crypto, frames
from agent.locks.nuki.channel import EncryptedChannel, PlainChannel, messages_only
from agent.locks.nuki.const import Command, ErrorCode, StatusCode
from agent.locks.nuki.errors import (
    AuthIdMismatch,
    BadCrc,
    BadLength,
    DecryptionFailed,
    MalformedMessage,
    ReplayedFrame,
    TruncatedFrame,
)
from agent.locks.nuki.messages import (
    Challenge,
    ErrorReport,
    KeyturnerStates,
    Message,
    PublicKey,
    RequestData,
    Status,
    UnknownMessage,
    parse_message,
)

KEY = bytes(range(32))
AUTH_ID = 7


def sample_messages() -> list[Message]:
    return [
        Status(StatusCode.ACCEPTED),
        Challenge(bytes(range(32, 64))),
        ErrorReport(ErrorCode.BUSY, Command.LOCK_ACTION),
        parse_message(Command.KEYTURNER_STATES, bytes(range(1, 20))),
        RequestData(Command.KEYTURNER_STATES),
    ]


def encrypted_stream(channel: EncryptedChannel, messages: list[Message]) -> bytes:
    return b"".join(channel.encode(m) for m in messages)


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_encrypted_reassembly_one_byte_at_a_time() -> None:
    sender, receiver = EncryptedChannel(KEY, AUTH_ID), EncryptedChannel(KEY, AUTH_ID)
    messages = sample_messages()
    got: list[Message] = []
    for byte in encrypted_stream(sender, messages):
        got += messages_only(receiver.feed(bytes([byte])))
    assert got == messages
    assert receiver.pending == 0


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=40))
def test_encrypted_reassembly_with_random_chunks(cuts: list[int]) -> None:
    sender, receiver = EncryptedChannel(KEY, AUTH_ID), EncryptedChannel(KEY, AUTH_ID)
    messages = sample_messages()
    got: list[Message] = []
    for piece in pieces(encrypted_stream(sender, messages), cuts):
        got += messages_only(receiver.feed(piece))
    assert got == messages


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_plain_reassembly_by_command_size_with_random_chunks(cuts: list[int]) -> None:
    channel = PlainChannel()
    messages: list[Message] = [
        PublicKey(bytes(32)),
        Challenge(bytes(range(32))),
        Status(StatusCode.COMPLETE),
        ErrorReport(ErrorCode.NOT_PAIRING, Command.REQUEST_DATA),
    ]
    stream = b"".join(channel.encode(m) for m in messages)
    got: list[Message] = []
    for piece in pieces(stream, cuts):
        got += messages_only(channel.feed(piece))
    assert got == messages


def test_plain_frame_of_unknown_size_ends_where_its_crc_checks() -> None:
    channel = PlainChannel()
    frame = frames.encode_plain(0x0999, b"\x01\x02\x03\x04\x05")
    assert channel.feed(frame[:3]) == []
    assert channel.feed(frame[3:]) == [UnknownMessage(0x0999, b"\x01\x02\x03\x04\x05")]


def test_corrupted_frame_is_rejected_and_the_next_one_still_decodes() -> None:
    sender, receiver = EncryptedChannel(KEY, AUTH_ID), EncryptedChannel(KEY, AUTH_ID)
    bad = bytearray(sender.encode(Status(StatusCode.COMPLETE)))
    bad[40] ^= 0x10
    out = receiver.feed(bytes(bad))
    assert len(out) == 1
    assert isinstance(out[0], DecryptionFailed)
    assert out[0].reason == "decryption_failed"
    assert messages_only(receiver.feed(sender.encode(Status(StatusCode.ACCEPTED)))) == [
        Status(StatusCode.ACCEPTED)
    ]


def test_a_replayed_frame_is_rejected_as_such() -> None:
    sender, receiver = EncryptedChannel(KEY, AUTH_ID), EncryptedChannel(KEY, AUTH_ID)
    frame = sender.encode(Status(StatusCode.ACCEPTED))
    assert messages_only(receiver.feed(frame)) == [Status(StatusCode.ACCEPTED)]
    replay = receiver.feed(frame)
    assert len(replay) == 1
    assert isinstance(replay[0], ReplayedFrame)


def test_an_impossible_length_field_is_rejected_and_the_stream_resyncs_at_the_next_piece() -> None:
    sender, receiver = EncryptedChannel(KEY, AUTH_ID), EncryptedChannel(KEY, AUTH_ID)
    garbage = bytes(24) + struct.pack("<IH", AUTH_ID, 0xFFFF) + b"rest of the piece"
    out = receiver.feed(garbage)
    assert len(out) == 1
    assert isinstance(out[0], BadLength)
    assert receiver.pending == 0
    assert messages_only(receiver.feed(sender.encode(Status(StatusCode.COMPLETE)))) == [
        Status(StatusCode.COMPLETE)
    ]


def test_truncated_and_overlong_whole_frames() -> None:
    frame = frames.encode_encrypted(KEY, AUTH_ID, Command.STATUS, b"\x00")
    with pytest.raises(TruncatedFrame):
        frames.decode_encrypted(KEY, frame[:-3])
    with pytest.raises(TruncatedFrame):
        frames.decode_encrypted(KEY, frame[:10])
    with pytest.raises(BadLength):
        frames.decode_encrypted(KEY, frame + b"\x00")
    with pytest.raises(TruncatedFrame):
        frames.decode_plain(b"\x0e\x00")


def test_bad_crc_inside_the_box_and_in_plaintext() -> None:
    nonce = bytes(24)
    inner = struct.pack("<IH", AUTH_ID, Command.STATUS) + b"\x00" + b"\x00\x00"  # wrong CRC
    box = crypto.seal(KEY, nonce, inner)
    frame = nonce + struct.pack("<IH", AUTH_ID, len(box)) + box
    with pytest.raises(BadCrc):
        frames.decode_encrypted(KEY, frame)
    with pytest.raises(BadCrc):
        frames.decode_plain(b"\x0e\x00\x00\x12\x34")


def test_auth_id_in_header_and_box_must_agree() -> None:
    frame = bytearray(frames.encode_encrypted(KEY, AUTH_ID, Command.STATUS, b"\x00"))
    frame[24:28] = struct.pack("<I", AUTH_ID + 1)
    with pytest.raises(AuthIdMismatch):
        frames.decode_encrypted(KEY, bytes(frame))


def test_a_frame_for_another_key_does_not_open() -> None:
    frame = frames.encode_encrypted(crypto.random_bytes(32), AUTH_ID, Command.STATUS, b"\x00")
    with pytest.raises(DecryptionFailed):
        frames.decode_encrypted(KEY, frame)


def test_keyturner_states_optional_bytes_and_unknown_values_never_raise() -> None:
    base = bytes([2, 0x42, 9]) + bytes(7) + b"\x3c\x00" + bytes([0b1011_0001]) + bytes(5) + b"\x99"
    states = KeyturnerStates.from_bytes(base)
    assert not states.lock_state.known
    assert int(states.lock_state) == 0x42
    assert not states.trigger.known
    assert not states.door_sensor.known
    assert states.battery_critical
    assert states.battery_percent == 88
    assert states.current_time is None
    assert states.night_mode is None
    longer = KeyturnerStates.from_bytes(base + bytes([1, 2, 3]) + struct.pack("<b", -71) + b"xx")
    assert (longer.night_mode, longer.remote_access, longer.ble_rssi) == (1, 3, -71)
    assert longer.extra == b"xx"
    assert KeyturnerStates.from_bytes(longer.to_bytes()) == longer


def test_a_payload_too_short_for_its_command_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="KEYTURNER_STATES"):
        parse_message(Command.KEYTURNER_STATES, bytes(10))
