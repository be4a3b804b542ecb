"""FrameDecoder on hostile input: never raises, says exactly what was wrong, keeps good frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import cobs
from firmware_bridge.codec import DecodedItem, Frame, FrameDecoder, encode_frame, pack_frame
from firmware_bridge.constants import MAX_ENCODED_LEN
from firmware_bridge.errors import FrameError, FrameErrorReason
from firmware_bridge.messages import (
    DoorContact,
    DoorState,
    Heartbeat,
    KeyEntry,
    Message,
    RelayPulse,
    StatusFlags,
)

GOOD: list[tuple[int, Message]] = [
    (1, KeyEntry("123456")),
    (2, DoorContact(DoorState.OPEN)),
    (0, Heartbeat(77, StatusFlags.DOOR_OPEN, 1)),
    (3, RelayPulse(0, 3000)),
]


def wire_of(frames: list[tuple[int, Message]]) -> bytes:
    return b"".join(encode_frame(message, seq) for seq, message in frames)


def feed_bytewise(decoder: FrameDecoder, data: bytes) -> list[DecodedItem]:
    items: list[DecodedItem] = []
    for byte in data:
        items += decoder.feed(bytes((byte,)))
    return items


def frames_in(items: list[DecodedItem]) -> list[tuple[int, Message]]:
    return [(item.seq, item.message) for item in items if isinstance(item, Frame)]


def errors_in(items: list[DecodedItem]) -> list[FrameError]:
    return [item for item in items if isinstance(item, FrameError)]


def one_error(chunk: bytes) -> FrameError:
    decoder = FrameDecoder()
    decoder.feed(b"\x00")  # synchronised, so errors are reported precisely, not as garbage
    (item,) = decoder.feed(chunk + b"\x00")
    assert isinstance(item, FrameError)
    return item


@given(st.binary(max_size=600))
def test_random_bytes_never_raise_and_yield_only_items(data: bytes) -> None:
    items = FrameDecoder().feed(data)
    assert all(isinstance(item, Frame | FrameError) for item in items)


@given(st.lists(st.binary(max_size=40), max_size=30))
def test_random_chunks_never_raise(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    items = [item for chunk in chunks for item in decoder.feed(chunk)]
    assert all(isinstance(item, Frame | FrameError) for item in items)


@given(st.binary(max_size=200).filter(lambda b: 0 not in b), st.integers(0, 3))
def test_garbage_between_frames_fed_bytewise_keeps_every_good_frame(
    garbage: bytes, gap: int
) -> None:
    data = wire_of(GOOD[:2]) + garbage + b"\x00" * gap + wire_of(GOOD[2:])
    items = feed_bytewise(FrameDecoder(), data)
    assert frames_in(items) == GOOD
    assert len(errors_in(items)) == (1 if garbage else 0)


@given(st.binary(min_size=1, max_size=120))
def test_garbage_with_zeros_between_frames_keeps_every_good_frame(garbage: bytes) -> None:
    data = wire_of(GOOD[:2]) + garbage + wire_of(GOOD[2:])
    items = feed_bytewise(FrameDecoder(), data)
    good_found = frames_in(items)
    # Random bytes may themselves form a valid frame by chance; the real ones must all be there.
    assert all(frame in good_found for frame in GOOD)
    assert [f for f in good_found if f in GOOD] == GOOD


@given(st.integers(0, 3), st.data())
def test_every_truncation_of_a_frame_is_reported_and_the_next_frame_survives(
    which: int, data: st.DataObject
) -> None:
    seq, message = GOOD[which]
    body = encode_frame(message, seq)[1:-1]
    cut = data.draw(st.integers(1, len(body) - 1))
    items = FrameDecoder().feed(wire_of(GOOD[:1]) + b"\x00" + body[:cut] + wire_of(GOOD[1:]))
    (error,) = errors_in(items)
    assert error.reason in {
        FrameErrorReason.BAD_COBS,
        FrameErrorReason.TRUNCATED,
        FrameErrorReason.BAD_CRC,
    }
    assert frames_in(items) == GOOD


@given(st.integers(0, 3), st.data())
def test_every_single_bit_flip_is_caught(which: int, data: st.DataObject) -> None:
    seq, message = GOOD[which]
    frame = bytearray(pack_frame(1, message.TYPE, seq, message.to_bytes()))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    items = FrameDecoder().feed(b"\x00" + cobs.encode(bytes(frame)) + b"\x00" + wire_of(GOOD))
    (error,) = errors_in(items)
    assert error.reason is FrameErrorReason.BAD_CRC
    assert frames_in(items) == GOOD


def test_bad_crc_message_names_both_values() -> None:
    frame = bytearray(pack_frame(1, 0x11, 1, b"1234"))
    frame[-1] ^= 0xFF
    error = one_error(cobs.encode(bytes(frame)))
    assert error.reason is FrameErrorReason.BAD_CRC
    said, computed = int.from_bytes(frame[-2:], "big"), int.from_bytes(frame[-2:], "big") ^ 0xFF
    assert error.detail == f"bad CRC: frame says 0x{said:04X}, computed 0x{computed:04X}"
    assert error.header is None


def test_truncated_frame_message() -> None:
    error = one_error(cobs.encode(b"\x01\x11\x01\x02"))
    assert error.reason is FrameErrorReason.TRUNCATED
    assert error.detail == "truncated frame: 4 bytes decoded, a frame has at least 5"


def test_bad_cobs_message() -> None:
    error = one_error(b"\x09\x01\x11")
    assert error.reason is FrameErrorReason.BAD_COBS
    assert "offset 0 declares 8 data bytes, only 2 follow" in error.detail


def test_bad_version_keeps_the_header() -> None:
    error = one_error(cobs.encode(pack_frame(2, 0x21, 9, b"\x01")))
    assert error.reason is FrameErrorReason.BAD_VERSION
    assert error.detail.startswith("unsupported protocol version 2 (this side speaks 1)")
    assert error.header is not None
    assert error.header.seq == 9


def test_unknown_type_keeps_the_header() -> None:
    error = one_error(cobs.encode(pack_frame(1, 0x7F, 4, b"")))
    assert error.reason is FrameErrorReason.UNKNOWN_TYPE
    assert error.detail == "unknown message type 0x7F (seq 4)"
    assert error.header is not None
    assert error.header.type_code == 0x7F


def test_oversized_run_is_reported_once_and_decoding_resumes() -> None:
    noise = b"\x55" * (MAX_ENCODED_LEN * 3)
    items = feed_bytewise(FrameDecoder(), wire_of(GOOD[:1]) + noise + wire_of(GOOD[1:]))
    (error,) = errors_in(items)
    assert error.reason is FrameErrorReason.OVERSIZED
    assert f"more than {MAX_ENCODED_LEN} bytes without a delimiter" in error.detail
    assert frames_in(items) == GOOD


def test_largest_frame_is_accepted_and_one_more_byte_is_oversized() -> None:
    decoder = FrameDecoder()
    largest = b"\x00" + b"\x46" + b"\x01" * (MAX_ENCODED_LEN - 1) + b"\x00"
    (at_limit,) = decoder.feed(largest)
    assert not (isinstance(at_limit, FrameError) and at_limit.reason is FrameErrorReason.OVERSIZED)
    (over,) = decoder.feed(b"\x47" + b"\x01" * MAX_ENCODED_LEN + b"\x00")
    assert isinstance(over, FrameError)
    assert over.reason is FrameErrorReason.OVERSIZED


def test_bytes_before_the_first_delimiter_are_garbage() -> None:
    items = FrameDecoder().feed(b"Booting v1.0\r\n" + wire_of(GOOD))
    (error,) = errors_in(items)
    assert error.reason is FrameErrorReason.GARBAGE
    assert error.detail.startswith("garbage: 14 bytes before the first frame delimiter")
    assert frames_in(items) == GOOD


def test_a_frame_without_leading_delimiter_at_start_is_still_accepted() -> None:
    assert frames_in(FrameDecoder().feed(wire_of(GOOD)[1:])) == GOOD


def test_reset_forgets_a_partial_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(wire_of(GOOD[:1])[:-4])
    decoder.reset()
    assert frames_in(decoder.feed(wire_of(GOOD))) == GOOD


@pytest.mark.parametrize("split", [1, 2, 5, 7, 13])
def test_frames_split_at_any_boundary(split: int) -> None:
    data = wire_of(GOOD)
    decoder = FrameDecoder()
    items: list[DecodedItem] = []
    for start in range(0, len(data), split):
        items += decoder.feed(data[start : start + split])
    assert frames_in(items) == GOOD
    assert not errors_in(items)
