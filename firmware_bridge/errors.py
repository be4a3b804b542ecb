"""Error tree of the keypad serial link: frames, link, port, timeouts."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware_bridge.messages import MsgType

__all__ = [
    "BridgeError",
    "DeliveryFailed",
    "FrameError",
    "FrameErrorReason",
    "FrameHeader",
    "KeypadTimeout",
    "LinkError",
    "NakReason",
    "PortError",
]


class BridgeError(Exception):
    """Base of every error raised or reported by firmware_bridge."""


class FrameErrorReason(enum.Enum):
    """Why a chunk of bytes between delimiters is not a usable frame."""

    GARBAGE = "garbage"  # bytes before the first delimiter that do not form a frame
    OVERSIZED = "oversized"  # more bytes than the largest frame without a delimiter
    BAD_COBS = "bad_cobs"  # COBS structure broken (a block runs past the end of the chunk)
    TRUNCATED = "truncated"  # decodes to fewer bytes than header + CRC
    BAD_CRC = "bad_crc"
    BAD_VERSION = "bad_version"
    UNKNOWN_TYPE = "unknown_type"  # unknown type code, or a type the receiver does not accept
    BAD_PAYLOAD = "bad_payload"  # wrong length or out-of-range field for the type


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The three header bytes of a frame whose CRC was good."""

    version: int
    type_code: int
    seq: int


class FrameError(BridgeError):
    """A chunk of received bytes could not be turned into a message."""

    def __init__(
        self,
        reason: FrameErrorReason,
        detail: str,
        *,
        header: FrameHeader | None = None,
        raw: bytes = b"",
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.header = header  # set when the CRC was good, so the frame can be NAKed
        self.raw = raw  # the offending chunk (encoded bytes, without delimiters)

    def __repr__(self) -> str:
        return f"FrameError({self.reason.value}: {self.detail})"


class NakReason(enum.IntEnum):
    """Reason byte of a NAK; UNKNOWN stands for values this build does not know."""

    UNKNOWN = -1
    UNSUPPORTED_VERSION = 1
    UNKNOWN_TYPE = 2
    BAD_PAYLOAD = 3
    NO_SESSION = 4

    @classmethod
    def _missing_(cls, value: object) -> NakReason:
        return cls.UNKNOWN


class LinkError(BridgeError):
    """The reliable link could not do what was asked."""


class DeliveryFailed(LinkError):
    """A reliable message was not acknowledged: retries exhausted, NAKed or session reset."""

    def __init__(
        self,
        seq: int,
        msg_type: MsgType,
        reason: str,
        *,
        nak: NakReason | None = None,
        ticket: int | None = None,
    ) -> None:
        super().__init__(f"{msg_type.name} seq {seq} not delivered: {reason}")
        self.seq = seq
        self.msg_type = msg_type
        self.reason = reason
        self.nak = nak  # set when the peer refused the frame
        self.ticket = ticket  # the sender's handle from LinkOutput.ticket


class PortError(BridgeError):
    """The serial port is missing, closed or failed."""

    def __init__(self, port: str, detail: str, *, errno: int | None = None) -> None:
        super().__init__(f"{port}: {detail}")
        self.port = port
        self.detail = detail
        self.errno = errno  # the OS error number behind it, when there was one


class KeypadTimeout(BridgeError, TimeoutError):
    """A keypad operation did not complete within its timeout."""
