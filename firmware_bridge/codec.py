"""Frame codec: messages to delimited COBS frames and a byte-stream decoder that never raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from firmware_bridge import cobs
from firmware_bridge.constants import (
    CRC_LEN,
    DELIMITER,
    HEADER_LEN,
    MAX_ENCODED_LEN,
    MAX_PAYLOAD_LEN,
    MIN_FRAME_LEN,
    PROTOCOL_VERSION,
)
from firmware_bridge.crc import crc16_ccitt_false
from firmware_bridge.errors import FrameError, FrameErrorReason, FrameHeader
from firmware_bridge.messages import Message, MsgType, decode_payload

__all__ = [
    "DecodedItem",
    "Frame",
    "FrameDecoder",
    "decode_frame",
    "encode_frame",
    "encode_raw_frame",
    "pack_frame",
]

_DELIM = bytes((DELIMITER,))


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame that decoded into a message."""

    seq: int
    message: Message


DecodedItem: TypeAlias = Frame | FrameError


def pack_frame(version: int, type_code: int, seq: int, payload: bytes) -> bytes:
    """Return the unencoded frame: header, payload and big-endian CRC."""
    if len(payload) > MAX_PAYLOAD_LEN:
        raise ValueError(f"payload is {len(payload)} bytes, the limit is {MAX_PAYLOAD_LEN}")
    body = bytes((version, type_code, seq)) + payload
    return body + crc16_ccitt_false(body).to_bytes(CRC_LEN, "big")


def encode_raw_frame(version: int, type_code: int, seq: int, payload: bytes) -> bytes:
    """Return arbitrary header and payload as wire bytes: 0x00, COBS(frame), 0x00."""
    return _DELIM + cobs.encode(pack_frame(version, type_code, seq, payload)) + _DELIM


def encode_frame(message: Message, seq: int = 0) -> bytes:
    """Return a message as wire bytes; unreliable types should use seq 0."""
    return encode_raw_frame(PROTOCOL_VERSION, message.TYPE.value, seq, message.to_bytes())


def decode_frame(chunk: bytes) -> DecodedItem:
    """Decode the bytes between two delimiters into a Frame or the FrameError saying why not."""
    if len(chunk) > MAX_ENCODED_LEN:
        return FrameError(
            FrameErrorReason.OVERSIZED,
            f"oversized frame: {len(chunk)} bytes, the limit is {MAX_ENCODED_LEN}",
            raw=chunk,
        )
    try:
        frame = cobs.decode(chunk)
    except cobs.CobsError as exc:
        return FrameError(FrameErrorReason.BAD_COBS, f"bad COBS: {exc}", raw=chunk)
    if len(frame) < MIN_FRAME_LEN:
        return FrameError(
            FrameErrorReason.TRUNCATED,
            f"truncated frame: {len(frame)} bytes decoded, a frame has at least {MIN_FRAME_LEN}",
            raw=chunk,
        )
    body, crc_bytes = frame[:-CRC_LEN], frame[-CRC_LEN:]
    said = int.from_bytes(crc_bytes, "big")
    computed = crc16_ccitt_false(body)
    if said != computed:
        return FrameError(
            FrameErrorReason.BAD_CRC,
            f"bad CRC: frame says 0x{said:04X}, computed 0x{computed:04X}",
            raw=chunk,
        )
    header = FrameHeader(version=body[0], type_code=body[1], seq=body[2])
    if header.version != PROTOCOL_VERSION:
        return FrameError(
            FrameErrorReason.BAD_VERSION,
            f"unsupported protocol version {header.version} (this side speaks "
            f"{PROTOCOL_VERSION}), type 0x{header.type_code:02X} seq {header.seq}",
            header=header,
            raw=chunk,
        )
    msg_type = MsgType.lookup(header.type_code)
    if msg_type is None:
        return FrameError(
            FrameErrorReason.UNKNOWN_TYPE,
            f"unknown message type 0x{header.type_code:02X} (seq {header.seq})",
            header=header,
            raw=chunk,
        )
    try:
        # MAX_ENCODED_LEN bounds the payload to MAX_PAYLOAD_LEN, so no separate check here.
        message = decode_payload(msg_type, body[HEADER_LEN:])
    except FrameError as exc:
        return FrameError(exc.reason, f"{exc.detail} (seq {header.seq})", header=header, raw=chunk)
    return Frame(seq=header.seq, message=message)


class FrameDecoder:
    """Splits a byte stream at 0x00 delimiters and decodes each chunk; never raises."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False  # an oversized chunk was reported; skip to the next delimiter
        self._synced = False  # a delimiter has been seen, so chunks start at frame boundaries

    def reset(self) -> None:
        """Forget partial input, e.g. after the port was reopened."""
        self._buf.clear()
        self._discarding = False
        self._synced = False

    def feed(self, data: bytes) -> list[DecodedItem]:
        """Consume bytes; return decoded frames and decode errors in arrival order."""
        items: list[DecodedItem] = []
        start = 0
        size = len(data)
        while start < size:
            end = data.find(DELIMITER, start)
            if end < 0:
                self._append(data[start:], items)
                break
            self._append(data[start:end], items)
            self._end_chunk(items)
            start = end + 1
        return items

    def _append(self, piece: bytes, items: list[DecodedItem]) -> None:
        if self._discarding or not piece:
            return
        if len(self._buf) + len(piece) > MAX_ENCODED_LEN:
            items.append(
                FrameError(
                    FrameErrorReason.OVERSIZED,
                    f"oversized frame: more than {MAX_ENCODED_LEN} bytes without a delimiter; "
                    "discarding up to the next 0x00",
                    raw=bytes(self._buf[:16]),
                )
            )
            self._buf.clear()
            self._discarding = True
            return
        self._buf += piece

    def _end_chunk(self, items: list[DecodedItem]) -> None:
        synced, self._synced = self._synced, True
        if self._discarding:
            self._discarding = False
            return
        if not self._buf:
            return
        chunk = bytes(self._buf)
        self._buf.clear()
        item = decode_frame(chunk)
        if not synced and isinstance(item, FrameError):
            # Joined the stream mid-frame (or a boot banner): say so rather than blame the frame.
            item = FrameError(
                FrameErrorReason.GARBAGE,
                f"garbage: {len(chunk)} bytes before the first frame delimiter "
                f"(joined mid-frame or line noise; decoding said: {item.detail})",
                raw=chunk,
            )
        items.append(item)
