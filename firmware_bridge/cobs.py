"""Consistent Overhead Byte Stuffing: byte strings without 0x00, so 0x00 can delimit frames."""

from __future__ import annotations

from typing import Final

__all__ = ["CobsError", "decode", "encode", "max_encoded_len"]

_MAX_BLOCK: Final = 0xFF  # a code byte of 0xFF means 254 data bytes and no implied zero


class CobsError(ValueError):
    """The input is not valid COBS."""

    def __init__(self, detail: str, offset: int) -> None:
        super().__init__(detail)
        self.offset = offset


def max_encoded_len(n: int) -> int:
    """Return the largest COBS encoding of n bytes (without delimiter)."""
    return n + n // 254 + 1


def encode(data: bytes) -> bytes:
    """Return data COBS-encoded; the result contains no 0x00 and no delimiter."""
    out = bytearray(b"\x01")
    code_at = 0
    code = 1
    for byte in data:
        if byte:
            out.append(byte)
            code += 1
            if code == _MAX_BLOCK:
                out[code_at] = code
                code_at = len(out)
                out.append(1)
                code = 1
        else:
            out[code_at] = code
            code_at = len(out)
            out.append(1)
            code = 1
    out[code_at] = code
    return bytes(out)


def decode(data: bytes) -> bytes:
    """Return the bytes data encodes; raise CobsError saying where the encoding breaks."""
    out = bytearray()
    size = len(data)
    pos = 0
    while pos < size:
        code = data[pos]
        if code == 0:
            raise CobsError(f"0x00 inside COBS data at offset {pos}", pos)
        end = pos + code
        if end > size:
            raise CobsError(
                f"COBS block at offset {pos} declares {code - 1} data bytes, "
                f"only {size - pos - 1} follow",
                pos,
            )
        block = data[pos + 1 : end]
        if 0 in block:
            zero_at = pos + 1 + block.index(0)
            raise CobsError(f"0x00 inside COBS data at offset {zero_at}", zero_at)
        out += block
        pos = end
        if code != _MAX_BLOCK and pos < size:
            out.append(0)
    return bytes(out)
