"""Sans-IO channels: bytes from indications in, typed messages (or precise errors) out."""

from __future__ import annotations

from collections.abc import Sequence

import agent.locks.nuki.keypad_messages
import agent.locks.nuki.log_messages  # noqa: F401  (registers the log messages)
from agent.locks.nuki import frames
from agent.locks.nuki.const import NONCE_LEN
from agent.locks.nuki.errors import FrameError, NukiProtocolError, UnexpectedMessage
from agent.locks.nuki.messages import Message, command_of, parse_message

Received = Message | NukiProtocolError


class PlainChannel:
    """Plaintext messages on a GDIO characteristic (pairing)."""

    def __init__(self) -> None:
        self._reassembler = frames.PlainReassembler()

    def encode(self, message: Message) -> bytes:
        """The frame for a message."""
        return frames.encode_plain(command_of(message), message.to_bytes())

    def feed(self, piece: bytes) -> list[Received]:
        """One indication piece in; the messages it completed and the errors it caused out."""
        return [_decode_plain(item) for item in self._reassembler.feed(piece)]

    def reset(self) -> None:
        """Forget a partial frame."""
        self._reassembler.reset()


def _decode_plain(item: bytes | FrameError) -> Received:
    if isinstance(item, FrameError):
        return item
    try:
        command, payload = frames.decode_plain(item)
        return parse_message(command, payload)
    except NukiProtocolError as exc:
        return exc


class EncryptedChannel:
    """Encrypted messages on the USDIO characteristic for one authorization."""

    def __init__(self, key: bytes, auth_id: int, *, expect_auth_id: int | None = None) -> None:
        self.key = key
        self.auth_id = auth_id
        self._expect = auth_id if expect_auth_id is None else expect_auth_id
        self._reassembler = frames.EncryptedReassembler()
        self._replay = frames.ReplayGuard()

    def encode(self, message: Message, nonce: bytes | None = None) -> bytes:
        """The encrypted frame for a message (a fresh random nonce unless given)."""
        return frames.encode_encrypted(
            self.key, self.auth_id, command_of(message), message.to_bytes(), nonce
        )

    def feed(self, piece: bytes) -> list[Received]:
        """One indication piece in; the messages it completed and the errors it caused out."""
        return [self._decode(item) for item in self._reassembler.feed(piece)]

    def decode_frame(self, frame: bytes) -> Received:
        """Decode one whole frame (a GATT write arrives whole)."""
        return self._decode(frame)

    def reset(self) -> None:
        """Forget a partial frame; the replay history is kept."""
        self._reassembler.reset()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return self._reassembler.pending

    def _decode(self, item: bytes | FrameError) -> Received:
        if isinstance(item, FrameError):
            return item
        try:
            auth_id, command, payload = frames.decode_encrypted(self.key, item)
            self._replay.check(item[:NONCE_LEN])
            if auth_id != self._expect:
                return UnexpectedMessage(f"frame for auth id {auth_id}, expected {self._expect}")
            return parse_message(command, payload)
        except NukiProtocolError as exc:
            return exc


def messages_only(received: Sequence[Received]) -> list[Message]:
    """The messages of a feed result (tests and tools that expect a clean stream)."""
    errors = [item for item in received if isinstance(item, NukiProtocolError)]
    if errors:
        raise errors[0]
    return [item for item in received if isinstance(item, Message)]
