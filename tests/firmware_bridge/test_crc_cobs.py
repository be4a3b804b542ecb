"""CRC-16/CCITT-FALSE and COBS: reference values, edge cases and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import cobs
from firmware_bridge.crc import crc16_ccitt_false


def bitwise_crc(data: bytes) -> int:
    """Straight from the definition: poly 0x1021, init 0xFFFF, no reflection, xorout 0."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_crc_of_nothing_is_the_initial_value() -> None:
    assert crc16_ccitt_false(b"") == 0xFFFF


@given(st.binary(max_size=300))
def test_crc_matches_bitwise_definition(data: bytes) -> None:
    assert crc16_ccitt_false(data) == bitwise_crc(data)


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_crc_chains_across_chunks(first: bytes, second: bytes) -> None:
    assert crc16_ccitt_false(second, crc16_ccitt_false(first)) == crc16_ccitt_false(first + second)


@given(st.binary(max_size=100))
def test_crc_appended_big_endian_leaves_zero_residue(data: bytes) -> None:
    framed = data + crc16_ccitt_false(data).to_bytes(2, "big")
    assert crc16_ccitt_false(framed) == 0


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    ],
)
def test_cobs_known_encodings(data: bytes, encoded: bytes) -> None:
    assert cobs.encode(data) == encoded
    assert cobs.decode(encoded) == data


def test_cobs_254_nonzero_bytes_use_one_full_block() -> None:
    data = bytes(range(1, 255))
    encoded = cobs.encode(data)
    assert encoded == b"\xff" + data + b"\x01"
    assert cobs.decode(encoded) == data


def test_cobs_255_nonzero_bytes_spill_into_a_second_block() -> None:
    data = bytes(range(1, 255)) + b"\x42"
    encoded = cobs.encode(data)
    assert encoded == b"\xff" + data[:254] + b"\x02\x42"
    assert cobs.decode(encoded) == data


def test_cobs_zero_after_a_full_block() -> None:
    data = b"\x01" * 254 + b"\x00" + b"\x02"
    encoded = cobs.encode(data)
    assert encoded == b"\xff" + b"\x01" * 254 + b"\x01\x02\x02"
    assert cobs.decode(encoded) == data


@given(st.binary(max_size=1200))
def test_cobs_round_trip_has_no_zeros_and_bounded_overhead(data: bytes) -> None:
    encoded = cobs.encode(data)
    assert 0 not in encoded
    assert len(encoded) <= cobs.max_encoded_len(len(data))
    assert cobs.decode(encoded) == data


def test_cobs_decode_reports_a_block_running_past_the_end() -> None:
    with pytest.raises(cobs.CobsError, match="offset 0 declares 4 data bytes, only 2 follow"):
        cobs.decode(b"\x05\x11\x22")


def test_cobs_decode_rejects_embedded_zero() -> None:
    with pytest.raises(cobs.CobsError, match="0x00 inside COBS data at offset 2") as info:
        cobs.decode(b"\x03\x11\x00")
    assert info.value.offset == 2


@given(st.binary(max_size=200))
def test_cobs_decode_of_anything_returns_or_raises_cobs_error(data: bytes) -> None:
    error: cobs.CobsError | None = None
    try:
        decoded = cobs.decode(data)
    except cobs.CobsError as exc:
        error, decoded = exc, b""
    if error is not None:
        assert 0 <= error.offset < len(data)
    else:
        assert len(decoded) <= len(data)
