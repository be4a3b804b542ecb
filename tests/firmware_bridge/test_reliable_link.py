"""LinkEndpoint: loss, duplication, reordering, give-up, dedup, NAKs and session resets."""

from __future__ import annotations

import heapq
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import cobs
from firmware_bridge.codec import encode_frame, pack_frame
from firmware_bridge.constants import MAX_QUEUED, MAX_TRANSMISSIONS, RETRANSMIT_TIMEOUT_S, WINDOW
from firmware_bridge.errors import LinkError, NakReason
from firmware_bridge.link import LinkEndpoint, LinkOutput, Role
from firmware_bridge.messages import (
    Ack,
    Capability,
    Heartbeat,
    Hello,
    HelloReason,
    HostHello,
    KeyEntry,
    Message,
    Nak,
    Outcome,
    RelayPulse,
    Result,
)

from .support import Recorder, split_frames

RTO = RETRANSMIT_TIMEOUT_S


def hello(reason: HelloReason = HelloReason.REQUESTED) -> Hello:
    return Hello(reason, (1, 0, 0), Capability.KEYPAD | Capability.RELAY)


def refuse_missing_relays(message: Message) -> str | None:
    if isinstance(message, RelayPulse) and message.relay > 0:
        return f"relay {message.relay} does not exist"
    return None


class Pair:
    """A host and a device endpoint joined by a hand-driven wire and clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.host = LinkEndpoint(Role.HOST, session_seed=100)
        self.device = LinkEndpoint(Role.DEVICE, session_seed=7000, validate=refuse_missing_relays)
        self.rec = {Role.HOST: Recorder(), Role.DEVICE: Recorder()}

    def peer(self, endpoint: LinkEndpoint) -> LinkEndpoint:
        return self.device if endpoint.role is Role.HOST else self.host

    def take(self, endpoint: LinkEndpoint, out: LinkOutput) -> list[bytes]:
        return split_frames(self.rec[endpoint.role].take(out))

    def send(self, endpoint: LinkEndpoint, message: Message) -> tuple[int | None, list[bytes]]:
        out = endpoint.send(message, self.now)
        return out.ticket, self.take(endpoint, out)

    def deliver(self, endpoint: LinkEndpoint, frames: list[bytes]) -> list[bytes]:
        return self.take(endpoint, endpoint.receive(b"".join(frames), self.now))

    def poll(self, endpoint: LinkEndpoint) -> list[bytes]:
        return self.take(endpoint, endpoint.poll(self.now))

    def settle(self, to: LinkEndpoint, frames: list[bytes]) -> None:
        """Deliver frames and every answer they provoke, losslessly, until quiet."""
        while frames:
            frames = self.deliver(to, frames)
            to = self.peer(to)

    def connect(self) -> None:
        self.settle(self.device, self.send(self.host, HostHello())[1])
        self.settle(self.host, self.send(self.device, hello())[1])

    @property
    def host_got(self) -> list[Message]:
        return self.rec[Role.HOST].delivered

    @property
    def device_got(self) -> list[Message]:
        return self.rec[Role.DEVICE].delivered


@pytest.fixture
def pair() -> Pair:
    linked = Pair()
    linked.connect()
    return linked


def codes(messages: list[Message]) -> list[str]:
    return [m.code for m in messages if isinstance(m, KeyEntry)]


def test_handshake_gives_both_directions_a_session(pair: Pair) -> None:
    assert pair.host.rx_session == pair.device.tx_session is not None
    assert pair.device.rx_session == pair.host.tx_session is not None
    assert isinstance(pair.device_got[0], HostHello)
    assert isinstance(pair.host_got[0], Hello)
    assert pair.host.unacked == pair.device.unacked == 0


def test_back_to_back_messages_go_out_without_waiting_and_arrive_in_order(pair: Pair) -> None:
    _, first = pair.send(pair.host, RelayPulse(0, 3000))
    _, second = pair.send(pair.host, Result(Outcome.GRANTED))
    assert first
    assert second
    pair.settle(pair.device, first + second)
    assert pair.device_got[1:] == [RelayPulse(0, 3000), Result(Outcome.GRANTED)]
    assert pair.host.unacked == 0


def test_nothing_follows_a_hello_until_it_is_acked() -> None:
    linked = Pair()
    _, hello_frames = linked.send(linked.host, HostHello())
    _, result_frames = linked.send(linked.host, Result(Outcome.DENIED))
    assert len(hello_frames) == 1
    assert result_frames == []
    linked.settle(linked.device, hello_frames)  # the ACK releases the queued RESULT
    assert linked.device_got == [HostHello(linked.host.tx_session or 0), Result(Outcome.DENIED)]


def test_lost_frame_is_retransmitted_after_the_timeout(pair: Pair) -> None:
    ticket, frames = pair.send(pair.device, KeyEntry("1234"))
    pair.now += RTO / 2
    assert pair.poll(pair.device) == []
    pair.now += RTO / 2
    assert pair.poll(pair.device) == frames
    pair.settle(pair.host, frames)
    assert codes(pair.host_got) == ["1234"]
    assert pair.rec[Role.DEVICE].acked[-1] == ticket


def test_lost_ack_leads_to_a_re_ack_but_no_second_delivery(pair: Pair) -> None:
    ticket, frames = pair.send(pair.device, KeyEntry("1234"))
    assert pair.deliver(pair.host, frames)  # the ACK is lost
    pair.now += RTO
    retransmission = pair.poll(pair.device)
    pair.settle(pair.host, retransmission)
    assert codes(pair.host_got) == ["1234"]
    assert ticket in pair.rec[Role.DEVICE].acked


def test_duplicated_frame_is_delivered_once_and_acked_twice(pair: Pair) -> None:
    _, frames = pair.send(pair.device, KeyEntry("5678"))
    acks = pair.deliver(pair.host, frames + frames)
    assert len(acks) == 2
    assert codes(pair.host_got) == ["5678"]


def test_reordered_frames_are_delivered_in_order(pair: Pair) -> None:
    _, first = pair.send(pair.device, KeyEntry("1111"))
    _, second = pair.send(pair.device, KeyEntry("2222"))
    answers = pair.deliver(pair.host, second) + pair.deliver(pair.host, first)
    assert codes(pair.host_got) == ["1111"]  # the early one waits for its predecessor
    pair.settle(pair.device, answers)  # the duplicate ACK triggers a fast retransmit
    assert codes(pair.host_got) == ["1111", "2222"]
    assert pair.device.unacked == 0


def test_sender_gives_up_after_max_transmissions_and_asks_for_a_new_session(pair: Pair) -> None:
    ticket, _ = pair.send(pair.device, KeyEntry("1234"))
    _, _ = pair.send(pair.device, KeyEntry("5678"))
    sends = 1
    while pair.device.next_deadline() is not None:
        pair.now = pair.device.next_deadline() or pair.now
        sends += bool(pair.poll(pair.device))
    rec = pair.rec[Role.DEVICE]
    assert sends == MAX_TRANSMISSIONS
    assert rec.failed[-2:] == [ticket, (ticket or 0) + 1]
    assert rec.resyncs == 1
    assert pair.device.tx_session is None
    with pytest.raises(LinkError, match="no session: send HELLO first"):
        pair.device.send(KeyEntry("9999"), pair.now)
    pair.settle(pair.host, pair.send(pair.device, hello(HelloReason.RESYNC))[1])
    pair.settle(pair.host, pair.send(pair.device, KeyEntry("9999"))[1])
    assert codes(pair.host_got) == ["9999"]


def test_window_bounds_frames_in_flight(pair: Pair) -> None:
    sent = [pair.send(pair.host, RelayPulse(0, 100 + i))[1] for i in range(WINDOW + 3)]
    assert all(sent[:WINDOW])
    assert not any(sent[WINDOW:])
    pair.settle(pair.device, [frame for frames in sent for frame in frames])
    assert [m.duration_ms for m in pair.device_got if isinstance(m, RelayPulse)] == list(
        range(100, 100 + WINDOW + 3)
    )


def test_send_queue_is_bounded(pair: Pair) -> None:
    for _ in range(MAX_QUEUED):
        pair.send(pair.host, Result(Outcome.DENIED))
    with pytest.raises(LinkError, match="send queue full"):
        pair.send(pair.host, Result(Outcome.DENIED))


def test_sequence_numbers_wrap_around(pair: Pair) -> None:
    for i in range(300):
        pair.settle(pair.host, pair.send(pair.device, KeyEntry(f"{i:04d}"))[1])
    assert codes(pair.host_got) == [f"{i:04d}" for i in range(300)]


def test_device_restart_resets_sequence_state(pair: Pair) -> None:
    for code in ("1111", "2222", "3333"):
        pair.settle(pair.host, pair.send(pair.device, KeyEntry(code))[1])
    pair.device = LinkEndpoint(Role.DEVICE, session_seed=4242)  # rebooted: seq starts at 0 again
    pair.settle(pair.host, pair.send(pair.device, hello(HelloReason.BOOT))[1])
    pair.settle(pair.host, pair.send(pair.device, KeyEntry("4444"))[1])
    assert codes(pair.host_got) == ["1111", "2222", "3333", "4444"]
    assert pair.host.rx_session == pair.device.tx_session


def test_host_restart_resets_sequence_state(pair: Pair) -> None:
    for outcome in (Outcome.DENIED, Outcome.DENIED):
        pair.settle(pair.device, pair.send(pair.host, Result(outcome))[1])
    pair.host = LinkEndpoint(Role.HOST, session_seed=9)
    pair.settle(pair.device, pair.send(pair.host, HostHello())[1])
    pair.settle(pair.device, pair.send(pair.host, Result(Outcome.GRANTED))[1])
    assert pair.device_got[-1] == Result(Outcome.GRANTED)
    assert pair.host.unacked == 0


def test_retransmitted_hello_is_acked_but_not_delivered_again(pair: Pair) -> None:
    _, frames = pair.send(pair.host, HostHello())
    pair.deliver(pair.device, frames)  # ACK lost
    pair.now += RTO
    pair.settle(pair.device, pair.poll(pair.host))
    assert sum(isinstance(m, HostHello) for m in pair.device_got) == 2  # connect + this one
    assert pair.host.unacked == 0


def test_starting_a_session_abandons_unacknowledged_frames(pair: Pair) -> None:
    ticket, _ = pair.send(pair.host, Result(Outcome.DENIED))
    out = pair.host.send(HostHello(), pair.now)
    assert [f.ticket for f in out.failed] == [ticket]
    assert "superseded by a new session" in str(out.failed[0])


def test_ack_from_a_previous_session_is_ignored(pair: Pair) -> None:
    _, frames = pair.send(pair.device, KeyEntry("1234"))
    stale_ack = pair.deliver(pair.host, frames)
    pair.settle(pair.host, pair.send(pair.device, hello(HelloReason.RESYNC))[1])
    ticket, _ = pair.send(pair.device, KeyEntry("5678"))
    pair.deliver(pair.device, stale_ack)
    assert ticket not in pair.rec[Role.DEVICE].acked
    assert pair.device.unacked == 1


def test_frame_without_session_is_naked_and_the_sender_resyncs(pair: Pair) -> None:
    pair.device = LinkEndpoint(Role.DEVICE)  # rebooted, and its HELLO(BOOT) was lost
    ticket, frames = pair.send(pair.host, Result(Outcome.GRANTED))
    (nak,) = pair.deliver(pair.device, frames)
    out = pair.host.receive(nak, pair.now)
    assert [f.ticket for f in out.failed] == [ticket]
    assert out.failed[0].nak is NakReason.NO_SESSION
    assert out.resync
    assert pair.host.tx_session is None
    pair.settle(pair.device, pair.send(pair.host, HostHello())[1])
    pair.settle(pair.device, pair.send(pair.host, Result(Outcome.GRANTED))[1])
    assert pair.device_got[-1] == Result(Outcome.GRANTED)


def test_unknown_reliable_type_is_naked_and_the_sequence_continues(pair: Pair) -> None:
    ticket, _ = pair.send(pair.host, RelayPulse(0, 500))
    unknown = b"\x00" + cobs.encode(pack_frame(1, 0x2F, 1, b"\x01")) + b"\x00"  # same seq
    naks = pair.deliver(pair.device, [unknown])
    assert pair.rec[Role.DEVICE].errors[-1] == "unknown message type 0x2F (seq 1)"
    assert naks == [encode_frame(Nak(1, 0x2F, NakReason.UNKNOWN_TYPE))]
    # As if the device were older and did not know RELAY_PULSE:
    out = pair.host.receive(encode_frame(Nak(1, 0x22, NakReason.UNKNOWN_TYPE)), pair.now)
    assert [f.ticket for f in out.failed] == [ticket]
    assert out.failed[0].nak is NakReason.UNKNOWN_TYPE
    assert pair.host.next_deadline() is None  # refused frames are not retried
    pair.settle(pair.device, pair.send(pair.host, Result(Outcome.DENIED))[1])
    assert pair.device_got[-1] == Result(Outcome.DENIED)


def test_bad_payload_is_naked(pair: Pair) -> None:
    bad = b"\x00" + cobs.encode(pack_frame(1, 0x22, 1, b"\x00\x00\x01")) + b"\x00"
    (reply,) = pair.deliver(pair.device, [bad])
    assert reply == encode_frame(Nak(1, 0x22, NakReason.BAD_PAYLOAD))
    assert "duration_ms must be 50..10000, got 1" in pair.rec[Role.DEVICE].errors[-1]


def test_application_refusal_is_naked_and_later_frames_flow(pair: Pair) -> None:
    refused, frames = pair.send(pair.host, RelayPulse(3, 500))
    accepted, more = pair.send(pair.host, Result(Outcome.GRANTED))
    pair.settle(pair.device, frames + more)
    assert refused in pair.rec[Role.HOST].failed
    assert accepted in pair.rec[Role.HOST].acked
    assert pair.device_got[-1] == Result(Outcome.GRANTED)
    assert "RELAY_PULSE refused: relay 3 does not exist" in pair.rec[Role.DEVICE].errors[-1]


def test_other_protocol_version_is_naked_with_our_version(pair: Pair) -> None:
    reliable = b"\x00" + cobs.encode(pack_frame(2, 0x21, 4, b"\x01")) + b"\x00"
    unreliable = b"\x00" + cobs.encode(pack_frame(2, 0x03, 0, b"")) + b"\x00"
    replies = pair.deliver(pair.device, [reliable, unreliable])
    assert replies == [encode_frame(Nak(4, 0x21, NakReason.UNSUPPORTED_VERSION, 1))]


def test_version_nak_fails_everything_and_says_which_version(pair: Pair) -> None:
    ticket, _ = pair.send(pair.host, Result(Outcome.DENIED))
    nak = encode_frame(Nak(1, 0x21, NakReason.UNSUPPORTED_VERSION, 3))
    out = pair.host.receive(nak, pair.now)
    assert [f.ticket for f in out.failed] == [ticket]
    assert "peer speaks protocol version 3, this side speaks 1" in str(out.errors[0])
    assert pair.host.tx_session is None
    assert not out.resync


def test_message_from_the_wrong_direction_is_refused(pair: Pair) -> None:
    wrong = encode_frame(RelayPulse(0, 500), 1)
    (reply,) = pair.deliver(pair.host, [wrong])
    assert reply == encode_frame(Nak(1, 0x22, NakReason.UNKNOWN_TYPE))
    assert "RELAY_PULSE (0x22) is not a device-to-host message" in pair.rec[Role.HOST].errors[-1]


def test_unreliable_frames_need_no_session_and_get_no_answer() -> None:
    host = LinkEndpoint(Role.HOST)
    out = host.receive(encode_frame(Heartbeat(12)), 0.0)
    assert out.delivered == (Heartbeat(12),)
    assert out.data == b""


def test_sending_needs_a_session_and_the_right_direction() -> None:
    host = LinkEndpoint(Role.HOST)
    with pytest.raises(LinkError, match="no session: send HOST_HELLO first"):
        host.send(Result(Outcome.GRANTED), 0.0)
    with pytest.raises(ValueError, match="a host does not send KEY_ENTRY"):
        host.send(KeyEntry("1234"), 0.0)
    assert host.send(Ack(0, 0), 0.0).ticket is None


class Network:
    """Two endpoints over a lossy wire, run by an event loop on a simulated clock."""

    def __init__(self, rng: random.Random, loss: float, dup: float, jitter: float) -> None:
        self.rng, self.loss, self.dup, self.jitter = rng, loss, dup, jitter
        self.now = 0.0
        self.host = LinkEndpoint(Role.HOST, session_seed=rng.randrange(65536))
        self.device = LinkEndpoint(Role.DEVICE, session_seed=rng.randrange(65536))
        self.queue: list[tuple[float, int, Role, bytes]] = []
        self.order = itertools.count()
        self.last_arrival = {Role.HOST: 0.0, Role.DEVICE: 0.0}
        self.delivered: list[str] = []
        self.acked: set[int] = set()
        self.sent: dict[int, str] = {}

    def transmit(self, to: Role, data: bytes) -> None:
        for frame in split_frames(data):
            if self.rng.random() < self.loss:
                continue
            for _ in range(2 if self.rng.random() < self.dup else 1):
                arrival = self.now + self.rng.uniform(0, self.jitter)
                if self.jitter == 0 or self.loss > 0:  # FIFO wire unless purely reordering
                    arrival = max(arrival, self.last_arrival[to])
                self.last_arrival[to] = arrival
                heapq.heappush(self.queue, (arrival, next(self.order), to, frame))

    def apply(self, role: Role, out: LinkOutput) -> None:
        self.transmit(Role.DEVICE if role is Role.HOST else Role.HOST, out.data)
        if role is Role.DEVICE:
            self.acked.update(out.acked)
            if out.resync:
                self.apply(role, self.device.send(hello(HelloReason.RESYNC), self.now))
        else:
            self.delivered += codes(list(out.delivered))
            if out.resync:
                self.apply(role, self.host.send(HostHello(), self.now))
        for message in out.delivered:
            if isinstance(message, HostHello):
                self.apply(Role.DEVICE, self.device.send(hello(), self.now))

    def run(self, count: int) -> None:
        self.apply(Role.HOST, self.host.send(HostHello(), self.now))  # the device answers it
        next_code = 0
        while self.now < 60.0:
            self.now = round(self.now + 0.01, 2)
            while self.queue and self.queue[0][0] <= self.now:
                _, _, to, frame = heapq.heappop(self.queue)
                endpoint = self.host if to is Role.HOST else self.device
                self.apply(to, endpoint.receive(frame, self.now))
            for role, endpoint in ((Role.HOST, self.host), (Role.DEVICE, self.device)):
                self.apply(role, endpoint.poll(self.now))
            if next_code < count and self.device.tx_session is not None and self.now > 0.5:
                out = self.device.send(KeyEntry(f"{next_code:04d}"), self.now)
                assert out.ticket is not None
                self.sent[out.ticket] = f"{next_code:04d}"
                next_code += 1
                self.apply(Role.DEVICE, out)
            if next_code == count and not self.queue and self.device.unacked == 0:
                return


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.floats(0, 0.35), st.floats(0, 0.3))
def test_lossy_fifo_wire_never_duplicates_or_reorders(seed: int, loss: float, dup: float) -> None:
    net = Network(random.Random(seed), loss, dup, jitter=0.05)
    net.run(count=25)
    assert net.delivered == sorted(set(net.delivered))  # in order, each at most once
    assert {net.sent[t] for t in net.acked if t in net.sent} <= set(net.delivered)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.floats(0, 0.3))
def test_reordering_and_duplication_still_deliver_everything_once_in_order(
    seed: int, dup: float
) -> None:
    net = Network(random.Random(seed), loss=0.0, dup=dup, jitter=0.15)
    net.run(count=25)
    assert net.delivered == [f"{i:04d}" for i in range(25)]
    assert set(net.sent) <= net.acked
