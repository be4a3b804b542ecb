"""Nuki framing, sans-IO: plaintext and encrypted frames, CRC, and reassembly of indications.

Indications arrive in ATT-MTU sized pieces (20 bytes at the default MTU). Encrypted frames carry
their length; plaintext frames are delimited by the expected size of their command (or, for a
command we do not know, by the first prefix whose CRC checks). A frame that fails is dropped with
the rest of its piece, and the stream resynchronises at the next piece: the lock starts every
message on a fresh indication.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Final

from agent.locks.nuki import crypto
from agent.locks.nuki.const import MAC_LEN, NONCE_LEN, Command
from agent.locks.nuki.errors import (
    AuthIdMismatch,
    BadCrc,
    BadLength,
    FrameError,
    ReplayedFrame,
    TruncatedFrame,
)
from firmware_bridge.crc import crc16_ccitt_false

HEADER_LEN: Final = NONCE_LEN + 4 + 2  # nonce, auth id, box length
MIN_BOX_LEN: Final = MAC_LEN + 4 + 2 + 2  # MAC, auth id, command, CRC
MAX_BOX_LEN: Final = 1024  # the largest message (a KeypadCode, a Config) is ~100 bytes
MAX_PLAIN_LEN: Final = 512
REPLAY_WINDOW: Final = 1024  # nonces remembered per channel to spot replayed frames

# Payload sizes of plaintext messages (pairing and GDIO): they carry no length field.
PLAIN_PAYLOAD_SIZES: Final[dict[int, int]] = {
    Command.REQUEST_DATA: 2,
    Command.PUBLIC_KEY: 32,
    Command.CHALLENGE: 32,
    Command.AUTHORIZATION_AUTHENTICATOR: 32,
    Command.AUTHORIZATION_DATA: 32 + 1 + 4 + 32 + 32,
    Command.AUTHORIZATION_ID: 32 + 4 + 16 + 32,
    Command.AUTHORIZATION_ID_CONFIRMATION: 32 + 4,
    Command.STATUS: 1,
    Command.ERROR_REPORT: 3,
}


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, the CRC every Nuki frame ends with."""
    return crc16_ccitt_false(data)


def _with_crc(data: bytes) -> bytes:
    return data + struct.pack("<H", crc16(data))


def _check_crc(data: bytes) -> bytes:
    """Return data without its CRC; raise BadCrc."""
    body, (crc,) = data[:-2], struct.unpack("<H", data[-2:])
    if crc16(body) != crc:
        raise BadCrc(f"CRC {crc:#06x} does not match {crc16(body):#06x}")
    return body


def encode_plain(command: int, payload: bytes) -> bytes:
    """A plaintext frame: command u16 ‖ payload ‖ CRC u16."""
    return _with_crc(struct.pack("<H", command) + payload)


def decode_plain(frame: bytes) -> tuple[int, bytes]:
    """(command, payload) of a whole plaintext frame; raise TruncatedFrame or BadCrc."""
    if len(frame) < 4:
        raise TruncatedFrame(f"a plaintext frame has at least 4 bytes, got {len(frame)}")
    body = _check_crc(frame)
    return struct.unpack_from("<H", body)[0], body[2:]


def encode_encrypted(
    key: bytes, auth_id: int, command: int, payload: bytes, nonce: bytes | None = None
) -> bytes:
    """An encrypted frame: nonce ‖ auth_id ‖ length ‖ box(auth_id ‖ command ‖ payload ‖ CRC)."""
    nonce = crypto.random_bytes(NONCE_LEN) if nonce is None else nonce
    inner = _with_crc(struct.pack("<IH", auth_id, command) + payload)
    box = crypto.seal(key, nonce, inner)
    return nonce + struct.pack("<IH", auth_id, len(box)) + box


def encrypted_header(frame: bytes) -> tuple[bytes, int, int]:
    """(nonce, auth_id, box length) of a frame's header; raise TruncatedFrame."""
    if len(frame) < HEADER_LEN:
        raise TruncatedFrame(f"an encrypted header has {HEADER_LEN} bytes, got {len(frame)}")
    auth_id, length = struct.unpack_from("<IH", frame, NONCE_LEN)
    return frame[:NONCE_LEN], auth_id, length


def decode_encrypted(key: bytes, frame: bytes) -> tuple[int, int, bytes]:
    """(auth_id, command, payload) of a whole encrypted frame; raise a FrameError."""
    nonce, auth_id, length = encrypted_header(frame)
    if not MIN_BOX_LEN <= length <= MAX_BOX_LEN:
        raise BadLength(f"box length {length} outside {MIN_BOX_LEN}..{MAX_BOX_LEN}")
    box = frame[HEADER_LEN:]
    if len(box) < length:
        raise TruncatedFrame(f"box has {len(box)} of {length} bytes")
    if len(box) > length:
        raise BadLength(f"{len(box) - length} bytes after the box")
    inner = _check_crc(crypto.unseal(key, nonce, box))
    inner_auth, command = struct.unpack_from("<IH", inner)
    if inner_auth != auth_id:
        raise AuthIdMismatch(f"header says auth id {auth_id}, box says {inner_auth}")
    return auth_id, command, inner[6:]


class EncryptedReassembler:
    """Cuts a stream of indication pieces into whole encrypted frames by their length field."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget a partial frame (after a timeout or reconnect)."""
        self._buffer.clear()

    def feed(self, piece: bytes) -> list[bytes | FrameError]:
        """Add one piece; return the frames it completed and the errors it caused, in order."""
        self._buffer += piece
        out: list[bytes | FrameError] = []
        while len(self._buffer) >= HEADER_LEN:
            _, _, length = encrypted_header(bytes(self._buffer[:HEADER_LEN]))
            if not MIN_BOX_LEN <= length <= MAX_BOX_LEN:
                self._buffer.clear()  # resync at the next piece
                out.append(BadLength(f"box length {length} outside {MIN_BOX_LEN}..{MAX_BOX_LEN}"))
                break
            end = HEADER_LEN + length
            if len(self._buffer) < end:
                break
            out.append(bytes(self._buffer[:end]))
            del self._buffer[:end]
        return out


class PlainReassembler:
    """Cuts a stream of plaintext pieces into frames by the expected size of each command."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget a partial frame."""
        self._buffer.clear()

    def feed(self, piece: bytes) -> list[bytes | FrameError]:
        """Add one piece; return the frames it completed and the errors it caused, in order."""
        self._buffer += piece
        out: list[bytes | FrameError] = []
        while len(self._buffer) >= 2:
            command = struct.unpack_from("<H", self._buffer)[0]
            size = PLAIN_PAYLOAD_SIZES.get(command)
            if size is not None:
                end = 2 + size + 2
                if len(self._buffer) < end:
                    break
            else:
                boundary = self._crc_boundary()
                if boundary is None:
                    if len(self._buffer) > MAX_PLAIN_LEN:
                        self._buffer.clear()
                        out.append(BadLength(f"no frame of {Command(command).name} ends in time"))
                    break
                end = boundary
            out.append(bytes(self._buffer[:end]))
            del self._buffer[:end]
        return out

    def _crc_boundary(self) -> int | None:
        """For a command of unknown size: the whole buffer, if its CRC checks."""
        data = bytes(self._buffer)
        if len(data) >= 4 and crc16(data[:-2]) == struct.unpack("<H", data[-2:])[0]:
            return len(data)
        return None


class ReplayGuard:
    """Remembers the nonces of frames seen on a link; a repeat is a replayed frame."""

    def __init__(self, window: int = REPLAY_WINDOW) -> None:
        self._seen: set[bytes] = set()
        self._order: deque[bytes] = deque()
        self._window = window

    def check(self, nonce: bytes) -> None:
        """Record a nonce; raise ReplayedFrame if it was seen before."""
        if nonce in self._seen:
            raise ReplayedFrame(f"nonce {nonce[:6].hex()}… seen before on this link")
        self._seen.add(nonce)
        self._order.append(nonce)
        if len(self._order) > self._window:
            self._seen.discard(self._order.popleft())
