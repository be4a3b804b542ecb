"""The agent against a real Mosquitto: apply signed desired state, refuse bad ones, drain events."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from agent.daemon import Agent
from agent.outbox import new_event
from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker, free_port, start_broker
from sync_protocol.models import EventType
from tests.agent.support import (
    Collector,
    code,
    config,
    desired,
    enrolled_state_dir,
    eventually,
    running,
    signed,
)

CLOUD_KEY = SigningKey.generate()


async def _agent(
    state_dir: Path, ca: CertificateAuthority, broker_port: int, gateway_id: str
) -> Agent:
    identity = enrolled_state_dir(state_dir, ca, gateway_id, CLOUD_KEY, broker_port=broker_port)
    return await Agent.open(config(state_dir), identity)


async def test_applies_signed_desired_state_and_reports_it(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    cloud = await Collector.start(broker, tmp_path / "certs", gw, CLOUD_KEY)
    agent = await _agent(tmp_path / "state", ca, broker.port, gw)
    doc = desired(agent.identity, 1, (code(agent.identity, "c1", "345678"),))
    await cloud.publish_desired(gw, signed(doc, CLOUD_KEY))
    async with running(agent):
        await eventually(lambda: agent.sync.status.applied_version == 1)
        assert agent.access.decide("345678", "lock-front", agent.clock.now()).granted
        await eventually(lambda: any(r.applied_version == 1 for r in cloud.reported(gw)))
        await eventually(lambda: any(e.type == "desired_applied" for e in cloud.events(gw)))
        assert cloud.presence(gw)[-1] == b"online"

        # A document signed by someone else, a stale version and garbage are refused with a reason.
        await cloud.publish_desired(
            gw, signed(desired(agent.identity, 2, ()), SigningKey.generate())
        )
        await eventually(lambda: any(e.result == "unknown_key" for e in cloud.events(gw)))
        await cloud.publish_desired(gw, b"\x00garbage{")
        await eventually(lambda: any(e.result == "malformed" for e in cloud.events(gw)))
        await eventually(
            lambda: any(
                r.rejection is not None and r.rejection.reason == "malformed"
                for r in cloud.reported(gw)
            )
        )
        assert agent.sync.status.applied_version == 1
        assert agent.access.decide("345678", "lock-front", agent.clock.now()).granted

        # A newer document replaces the codes entirely.
        doc2 = desired(agent.identity, 2, (code(agent.identity, "c2", "456789"),))
        await cloud.publish_desired(gw, signed(doc2, CLOUD_KEY))
        await eventually(lambda: agent.sync.status.applied_version == 2)
        assert not agent.access.decide("345678", "lock-front", agent.clock.now()).granted
        assert agent.access.decide("456789", "lock-front", agent.clock.now()).granted

        await cloud.publish_desired(gw, signed(doc, CLOUD_KEY))  # version 1 again: stale
        await eventually(lambda: any(e.result == "stale_version" for e in cloud.events(gw)))
    await cloud.close()


async def test_retained_redelivery_after_restart_is_a_no_op(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    cloud = await Collector.start(broker, tmp_path / "certs", gw, CLOUD_KEY)
    agent = await _agent(tmp_path / "state", ca, broker.port, gw)
    doc = desired(agent.identity, 4, (code(agent.identity, "c1", "345678"),))
    await cloud.publish_desired(gw, signed(doc, CLOUD_KEY))
    async with running(agent):
        await eventually(lambda: agent.sync.status.applied_version == 4)
        await eventually(lambda: any(r.applied_version == 4 for r in cloud.reported(gw)))
    restarted = await Agent.open(config(tmp_path / "state"), agent.identity)
    assert restarted.sync.status.applied_version == 4
    assert restarted.access.decide("345678", "lock-front", restarted.clock.now()).granted
    async with running(restarted):
        await eventually(lambda: restarted.sync.status.sessions == 1)
        await eventually(lambda: len(cloud.reported(gw)) >= 2)
        await asyncio.sleep(0.3)
    # At-least-once delivery may repeat an event (the cloud dedups by id); it is never re-created.
    applied = {e.id for e in cloud.events(gw) if e.type == "desired_applied"}
    rejected = [e for e in cloud.events(gw) if e.type == "desired_rejected"]
    assert len(applied) == 1
    assert rejected == []
    await cloud.close()


async def test_events_queued_offline_are_delivered_once_in_order(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    port = free_port()
    agent = await _agent(tmp_path / "state", ca, port, gw)
    async with running(agent):
        # The broker is down: decisions are still recorded, durably, in order.
        events = [
            new_event(EventType.ACCESS_DENIED, agent.clock, result=f"n{i}") for i in range(250)
        ]
        for event in events:
            await agent.outbox.add(event)
        await asyncio.sleep(0.5)
        assert agent.store.sync.outbox.depth == 250

        broker = start_broker(tmp_path / "broker", ca, port=port)
        try:
            cloud = await Collector.start(broker, tmp_path / "certs", gw, CLOUD_KEY)
            await eventually(
                lambda: len([e for e in cloud.events(gw) if e.type == "access_denied"]) == 250, 30
            )
            await eventually(lambda: agent.store.sync.outbox.depth == 0)
            got = [e.id for e in cloud.events(gw) if e.type == "access_denied"]
            assert got == [e.id for e in events]
            await cloud.close()
        finally:
            broker.stop()


async def test_events_the_broker_lost_are_sent_again_until_the_cloud_confirms(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    # A cloud that never confirms: the agent keeps the events and sends them again.
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    broker = start_broker(tmp_path / "broker", ca)
    agent = await _agent(tmp_path / "state", ca, broker.port, gw)
    try:
        silent = await Collector.start(broker, tmp_path / "certs", gw)  # stores, never confirms
        async with running(agent):
            event = new_event(EventType.ACCESS_GRANTED, agent.clock, result="granted")
            await agent.outbox.add(event)
            await eventually(
                lambda: len([e for e in silent.events(gw) if e.id == event.id]) >= 2, 20
            )
            assert agent.store.sync.outbox.depth >= 1
            confirming = await Collector.start(broker, tmp_path / "certs2", gw, CLOUD_KEY)
            await eventually(lambda: agent.store.sync.outbox.depth == 0, 20)
            await confirming.close()
        await silent.close()
    finally:
        broker.stop()


async def test_unsealable_pin_rejects_the_whole_document(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    from nacl.public import PrivateKey

    from sync_protocol.models import DesiredCode
    from sync_protocol.sealing import seal_pin

    gw = f"gw-{uuid.uuid4().hex[:10]}"
    cloud = await Collector.start(broker, tmp_path / "certs", gw, CLOUD_KEY)
    agent = await _agent(tmp_path / "state", ca, broker.port, gw)
    good = code(agent.identity, "c1", "345678")
    bad = good.model_copy(
        update={"id": "c2", "pin": seal_pin("456789", "c2", PrivateKey.generate().public_key)}
    )
    assert isinstance(bad, DesiredCode)
    async with running(agent):
        await cloud.publish_desired(gw, signed(desired(agent.identity, 1, (good, bad)), CLOUD_KEY))
        await eventually(lambda: any(e.result == "bad_seal" for e in cloud.events(gw)))
        assert agent.sync.status.applied_version == 0
        assert not agent.access.decide("345678", "lock-front", agent.clock.now()).granted
    await cloud.close()


@pytest.mark.parametrize("payload", [b"", b"{}", b"[1,2]", b"\xff" * 100])
async def test_garbage_desired_never_kills_the_agent(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path, payload: bytes
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    cloud = await Collector.start(broker, tmp_path / "certs", gw, CLOUD_KEY)
    agent = await _agent(tmp_path / "state", ca, broker.port, gw)
    async with running(agent):
        await eventually(lambda: agent.sync.status.connected)
        if payload:
            await cloud.publish_desired(gw, payload)
            await eventually(lambda: any(e.type == "desired_rejected" for e in cloud.events(gw)))
        doc = desired(agent.identity, 1, (code(agent.identity, "c1", "345678"),))
        await cloud.publish_desired(gw, signed(doc, CLOUD_KEY))
        await eventually(lambda: agent.sync.status.applied_version == 1)
    await cloud.close()


def test_random_and_truncated_desired_documents_change_nothing(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    loop = asyncio.new_event_loop()
    agent = loop.run_until_complete(_agent(tmp_path / "state", ca, free_port(), "gw-fuzz"))
    good = signed(desired(agent.identity, 1, (code(agent.identity, "c1", "345678"),)), CLOUD_KEY)
    assert loop.run_until_complete(agent.sync.on_desired(good))

    @settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        st.one_of(
            st.binary(max_size=3000),
            st.integers(min_value=0, max_value=len(good) - 1).map(lambda n: good[:n]),
            st.tuples(st.integers(0, len(good) - 1), st.integers(1, 255)).map(
                lambda p: good[: p[0]] + bytes([good[p[0]] ^ p[1]]) + good[p[0] + 1 :]
            ),
        )
    )
    def check(payload: bytes) -> None:
        assert not loop.run_until_complete(agent.sync.on_desired(payload))
        assert agent.sync.status.applied_version == 1
        assert agent.sync.status.last_rejection is not None

    try:
        check()
        assert agent.access.decide("345678", "lock-front", agent.clock.now()).granted
        assert agent.store.sync.applied().version == 1
        assert agent.store.sync.integrity_check() == "ok"
    finally:
        loop.run_until_complete(agent.store.close())
        loop.close()
