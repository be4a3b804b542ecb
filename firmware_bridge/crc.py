"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, xorout 0)."""

from __future__ import annotations

from typing import Final

__all__ = ["CRC16_CCITT_FALSE_INIT", "crc16_ccitt_false"]

CRC16_CCITT_FALSE_INIT: Final = 0xFFFF
_POLY: Final = 0x1021


def _make_table() -> tuple[int, ...]:
    """Return the byte-at-a-time lookup table for the 0x1021 polynomial."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return tuple(table)


_TABLE: Final = _make_table()


def crc16_ccitt_false(data: bytes, crc: int = CRC16_CCITT_FALSE_INIT) -> int:
    """Return the CRC of data, continuing from crc (pass a previous result to chain chunks)."""
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFF00) ^ table[(crc >> 8) ^ byte]
    return crc
