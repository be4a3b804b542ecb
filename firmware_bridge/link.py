"""Sans-IO reliable link endpoint (go-back-N with cumulative ACKs), for host and device alike."""

from __future__ import annotations

import enum
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from firmware_bridge.codec import Frame, FrameDecoder, encode_frame
from firmware_bridge.constants import (
    MAX_QUEUED,
    MAX_TRANSMISSIONS,
    PROTOCOL_VERSION,
    RETRANSMIT_TIMEOUT_S,
    SEQ_MODULUS,
    SESSION_MODULUS,
    WINDOW,
)
from firmware_bridge.errors import (
    BridgeError,
    DeliveryFailed,
    FrameError,
    FrameErrorReason,
    FrameHeader,
    LinkError,
    NakReason,
)
from firmware_bridge.messages import (
    CONTROL_TYPES,
    DEVICE_TYPES,
    HOST_TYPES,
    Ack,
    Hello,
    HostHello,
    Message,
    MsgType,
    Nak,
    is_reliable_code,
)

__all__ = ["LinkEndpoint", "LinkOutput", "Role", "Validator"]

_SEQ_MASK = SEQ_MODULUS - 1

Validator = Callable[[Message], str | None]  # returns why a delivered message is refused


class Role(enum.Enum):
    """Which end of the link an endpoint is."""

    HOST = "host"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class LinkOutput:
    """What one link call produced: bytes to write and events for the application."""

    data: bytes = b""
    delivered: tuple[Message, ...] = ()
    acked: tuple[int, ...] = ()  # tickets of reliable messages the peer acknowledged
    failed: tuple[DeliveryFailed, ...] = ()
    errors: tuple[BridgeError, ...] = ()  # frames we could not use, protocol trouble
    resync: bool = False  # the sending session is broken: send a new hello now
    ticket: int | None = None  # handle of the reliable message passed to send()


@dataclass(slots=True)
class _Collector:
    data: bytearray = field(default_factory=bytearray)
    delivered: list[Message] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    failed: list[DeliveryFailed] = field(default_factory=list)
    errors: list[BridgeError] = field(default_factory=list)
    resync: bool = False

    def freeze(self, ticket: int | None = None) -> LinkOutput:
        return LinkOutput(
            data=bytes(self.data),
            delivered=tuple(self.delivered),
            acked=tuple(self.acked),
            failed=tuple(self.failed),
            errors=tuple(self.errors),
            resync=self.resync,
            ticket=ticket,
        )


@dataclass(slots=True)
class _Pending:
    ticket: int
    seq: int
    message: Message
    wire: bytes
    transmissions: int = 0  # 0: queued behind the window, not yet on the wire
    deadline: float = 0.0
    fast_retransmitted: bool = False


def _distance(seq: int, base: int) -> int:
    return (seq - base) & _SEQ_MASK


def _outside_window(seq: int, type_code: int, expected: int) -> LinkError:
    return LinkError(
        f"frame type 0x{type_code:02X} seq {seq} is outside the receive window "
        f"(expecting seq {expected}); ignored"
    )


class LinkEndpoint:
    """One end of the reliable link: bytes in, messages and bytes to write out; clock injected."""

    def __init__(
        self,
        role: Role,
        *,
        session_seed: int | None = None,
        validate: Validator | None = None,
        retransmit_timeout_s: float = RETRANSMIT_TIMEOUT_S,
        max_transmissions: int = MAX_TRANSMISSIONS,
    ) -> None:
        self.role = role
        own, peer = (HOST_TYPES, DEVICE_TYPES) if role is Role.HOST else (DEVICE_TYPES, HOST_TYPES)
        self._sendable = own | CONTROL_TYPES
        self._acceptable = peer | CONTROL_TYPES
        self._start_out = MsgType.HOST_HELLO if role is Role.HOST else MsgType.HELLO
        self._start_in = MsgType.HELLO if role is Role.HOST else MsgType.HOST_HELLO
        self._validate = validate
        self._rto = retransmit_timeout_s
        self._max_tx = max_transmissions
        self._decoder = FrameDecoder()
        self._session_counter = (
            secrets.randbelow(SESSION_MODULUS)
            if session_seed is None
            else session_seed % SESSION_MODULUS
        )
        self._tx_session: int | None = None
        self._next_seq = 0
        self._next_ticket = 1
        self._pending: deque[_Pending] = deque()
        self._stalled_rounds = 0  # timeouts since an ACK last moved the window
        self._rx_session: int | None = None
        self._rx_expected: int | None = None
        self.last_rx_at: float | None = None  # when the last frame with a good CRC arrived

    @property
    def tx_session(self) -> int | None:
        """Session number of our sending side, None until our hello is sent."""
        return self._tx_session

    @property
    def rx_session(self) -> int | None:
        """Session number the peer announced in its last hello, None before one arrived."""
        return self._rx_session

    @property
    def unacked(self) -> int:
        """Reliable messages sent or queued and not yet acknowledged."""
        return len(self._pending)

    def next_deadline(self) -> float | None:
        """Return when poll() next has work (a retransmission or a give-up), if ever."""
        deadlines = [p.deadline for p in self._in_flight()]
        return min(deadlines) if deadlines else None

    def send(self, message: Message, now: float) -> LinkOutput:
        """Queue a message; return the bytes to write now and, for reliable ones, a ticket."""
        msg_type = message.TYPE
        if msg_type not in self._sendable:
            raise ValueError(f"a {self.role.value} does not send {msg_type.name}")
        out = _Collector()
        if not msg_type.reliable:
            out.data += encode_frame(message, 0)
            return out.freeze()
        if msg_type is self._start_out:
            self._abandon_all(out, "superseded by a new session")
            self._session_counter = (self._session_counter + 1) % SESSION_MODULUS
            self._tx_session = self._session_counter
            self._next_seq = 0
            if isinstance(message, Hello | HostHello):
                message = replace(message, session=self._tx_session)
        elif self._tx_session is None:
            raise LinkError(f"no session: send {self._start_out.name} first")
        if len(self._pending) >= MAX_QUEUED:
            raise LinkError(f"send queue full: {MAX_QUEUED} messages await acknowledgement")
        ticket = self._next_ticket
        self._next_ticket += 1
        seq = self._next_seq
        self._next_seq = (seq + 1) & _SEQ_MASK
        self._pending.append(_Pending(ticket, seq, message, encode_frame(message, seq)))
        self._fill_window(out, now)
        return out.freeze(ticket=ticket)

    def receive(self, data: bytes, now: float) -> LinkOutput:
        """Consume received bytes; return delivered messages, ACK/NAK bytes and errors."""
        out = _Collector()
        for item in self._decoder.feed(data):
            if isinstance(item, FrameError):
                if item.header is not None:
                    self.last_rx_at = now
                self._on_bad_frame(item, out)
            else:
                self.last_rx_at = now
                self._on_frame(item, now, out)
        return out.freeze()

    def poll(self, now: float) -> LinkOutput:
        """Run timers: retransmit overdue frames or give up on them."""
        out = _Collector()
        in_flight = self._in_flight()
        if not any(p.deadline <= now for p in in_flight):
            return out.freeze()
        head = in_flight[0]
        if self._stalled_rounds + 1 >= self._max_tx:
            self._pending.popleft()
            out.failed.append(
                self._failure(head, f"no ACK after {self._stalled_rounds + 1} sends in a row")
            )
            self._abandon_all(out, f"abandoned after seq {head.seq} was not delivered")
            self._tx_session = None
            out.resync = True
            return out.freeze()
        self._stalled_rounds += 1
        self._retransmit(in_flight, out, now)
        return out.freeze()

    # -- sending side ------------------------------------------------------------------------

    def _in_flight(self) -> list[_Pending]:
        return [p for p in self._pending if p.transmissions > 0]

    def _fill_window(self, out: _Collector, now: float) -> None:
        for index, pending in enumerate(self._pending):
            if index >= WINDOW:
                break
            if index > 0 and self._pending[0].message.TYPE is self._start_out:
                break  # nothing follows a hello until it is ACKed: no frame may precede it
            if pending.transmissions == 0:
                pending.transmissions = 1
                pending.deadline = now + self._rto
                out.data += pending.wire

    def _retransmit(self, in_flight: list[_Pending], out: _Collector, now: float) -> None:
        for pending in in_flight:
            pending.transmissions += 1
            pending.deadline = now + self._rto
            out.data += pending.wire

    def _failure(
        self, pending: _Pending, reason: str, nak: NakReason | None = None
    ) -> DeliveryFailed:
        return DeliveryFailed(
            pending.seq, pending.message.TYPE, reason, nak=nak, ticket=pending.ticket
        )

    def _abandon_all(self, out: _Collector, reason: str, nak: NakReason | None = None) -> None:
        while self._pending:
            out.failed.append(self._failure(self._pending.popleft(), reason, nak))
        self._stalled_rounds = 0

    def _progress(self, out: _Collector, now: float) -> None:
        """The window moved: restart the retry budget and timers, send what now fits."""
        self._stalled_rounds = 0
        for pending in self._in_flight():
            pending.deadline = now + self._rto
        self._fill_window(out, now)

    def _on_ack(self, ack: Ack, now: float, out: _Collector) -> None:
        in_flight = self._in_flight()
        if ack.session != self._tx_session or not in_flight:
            return  # stale: from an earlier session or for frames already acknowledged
        offset = _distance(ack.acked_seq, in_flight[0].seq)
        if offset < len(in_flight):
            for _ in range(offset + 1):
                out.acked.append(self._pending.popleft().ticket)
            self._progress(out, now)
        elif offset == _SEQ_MASK and not in_flight[0].fast_retransmitted:
            # The peer has everything before our oldest frame and a later one: it was lost.
            in_flight[0].fast_retransmitted = True
            self._retransmit(in_flight, out, now)

    def _on_nak(self, nak: Nak, now: float, out: _Collector) -> None:
        if nak.reason is NakReason.UNSUPPORTED_VERSION:
            out.errors.append(
                LinkError(
                    f"peer speaks protocol version {nak.detail}, this side speaks "
                    f"{PROTOCOL_VERSION}; nothing can be delivered"
                )
            )
            self._abandon_all(out, "peer speaks another protocol version", nak.reason)
            self._tx_session = None
            return
        if nak.reason is NakReason.NO_SESSION:
            self._abandon_all(out, "peer has no session with us (did it restart?)", nak.reason)
            self._tx_session = None
            out.resync = True
            return
        in_flight = self._in_flight()
        for index, pending in enumerate(in_flight):
            if pending.seq == nak.nak_seq and pending.message.TYPE.value == nak.nak_type:
                for _ in range(index):  # the peer takes frames in order: earlier ones arrived
                    out.acked.append(self._pending.popleft().ticket)
                self._pending.popleft()
                out.failed.append(self._failure(pending, f"refused: {nak.reason.name}", nak.reason))
                self._progress(out, now)
                return

    # -- receiving side ----------------------------------------------------------------------

    def _on_frame(self, frame: Frame, now: float, out: _Collector) -> None:
        message = frame.message
        msg_type = message.TYPE
        if msg_type not in self._acceptable:
            sender = "device" if self.role is Role.HOST else "host"
            error = FrameError(
                FrameErrorReason.UNKNOWN_TYPE,
                f"{msg_type.name} (0x{msg_type.value:02X}) is not a {sender}-to-"
                f"{self.role.value} message (seq {frame.seq})",
                header=FrameHeader(PROTOCOL_VERSION, msg_type.value, frame.seq),
            )
            self._on_bad_frame(error, out)
        elif isinstance(message, Ack):
            self._on_ack(message, now, out)
        elif isinstance(message, Nak):
            self._on_nak(message, now, out)
        elif not msg_type.reliable:
            out.delivered.append(message)
        elif msg_type is self._start_in:
            self._on_session_start(frame, out)
        else:
            self._on_reliable(frame, out)

    def _on_session_start(self, frame: Frame, out: _Collector) -> None:
        message = frame.message
        assert isinstance(message, Hello | HostHello)
        if message.session == self._rx_session:
            self._send_ack(out)  # a retransmission of the hello that started this session
            return
        self._rx_session = message.session
        self._rx_expected = (frame.seq + 1) & _SEQ_MASK
        self._send_ack(out)
        out.delivered.append(message)

    def _on_reliable(self, frame: Frame, out: _Collector) -> None:
        message = frame.message
        type_code = message.TYPE.value
        expected = self._rx_expected
        if expected is None:
            self._send_nak(out, frame.seq, type_code, NakReason.NO_SESSION)
            return
        distance = _distance(frame.seq, expected)
        if distance == 0 or distance >= SEQ_MODULUS - WINDOW:
            refusal = self._validate(message) if self._validate else None
            if distance == 0:
                self._rx_expected = (expected + 1) & _SEQ_MASK
                if refusal is None:
                    out.delivered.append(message)
            if refusal is None:
                self._send_ack(out)
            else:
                header = FrameHeader(PROTOCOL_VERSION, type_code, frame.seq)
                out.errors.append(
                    FrameError(
                        FrameErrorReason.BAD_PAYLOAD,
                        f"{message.TYPE.name} refused: {refusal}",
                        header=header,
                    )
                )
                self._send_nak(out, frame.seq, type_code, NakReason.BAD_PAYLOAD)
        elif distance < WINDOW:
            self._send_ack(out)  # ahead of a gap: re-ACK what we have so the sender resends
        else:
            out.errors.append(_outside_window(frame.seq, type_code, expected))

    def _on_bad_frame(self, error: FrameError, out: _Collector) -> None:
        out.errors.append(error)
        header = error.header
        if header is None or not is_reliable_code(header.type_code):
            return  # unusable bytes or an unreliable frame: never answered
        if error.reason is FrameErrorReason.BAD_VERSION:
            self._send_nak(
                out, header.seq, header.type_code, NakReason.UNSUPPORTED_VERSION, PROTOCOL_VERSION
            )
            return
        reason = (
            NakReason.UNKNOWN_TYPE
            if error.reason is FrameErrorReason.UNKNOWN_TYPE
            else NakReason.BAD_PAYLOAD
        )
        expected = self._rx_expected
        if expected is None:
            self._send_nak(out, header.seq, header.type_code, reason)
            return
        distance = _distance(header.seq, expected)
        if distance == 0:
            self._rx_expected = (expected + 1) & _SEQ_MASK  # consumed: later frames may follow
            self._send_nak(out, header.seq, header.type_code, reason)
        elif distance >= SEQ_MODULUS - WINDOW:
            self._send_nak(out, header.seq, header.type_code, reason)
        elif distance < WINDOW:
            self._send_ack(out)
        else:
            out.errors.append(_outside_window(header.seq, header.type_code, expected))

    def _send_ack(self, out: _Collector) -> None:
        assert self._rx_expected is not None
        assert self._rx_session is not None
        acked = (self._rx_expected - 1) & _SEQ_MASK
        out.data += encode_frame(Ack(acked, self._rx_session), 0)

    def _send_nak(
        self, out: _Collector, seq: int, type_code: int, reason: NakReason, detail: int = 0
    ) -> None:
        out.data += encode_frame(Nak(seq, type_code, reason, detail), 0)
