"""The daemon as a whole: reported state, systemd notifications, a keypad flooding frames."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from agent.daemon import Agent
from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker
from simulator.keypad import KeypadEmulator
from sync_protocol.models import (
    CodeKind,
    DeliveryState,
    DesiredCode,
    LockKind,
    LockSpec,
    LockState,
)
from sync_protocol.sealing import seal_pin
from tests.agent.support import (
    LOCK,
    Collector,
    code,
    config,
    desired,
    enrolled_state_dir,
    eventually,
    running,
    signed,
)

KEY = SigningKey.generate()
NUKI = "lock-nuki"


async def test_reported_state_tells_the_truth_about_every_lock_and_code(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    link = tmp_path / "ttyKEYPAD"
    emulator = KeypadEmulator(str(link))
    await emulator.start()
    identity = enrolled_state_dir(tmp_path / "state", ca, gw, KEY, broker_port=broker.port)
    cloud = await Collector.start(broker, tmp_path / "certs", gw, KEY)
    doc = desired(identity, 1, ())
    now = datetime.now(UTC)
    both = DesiredCode(
        id="both",
        kind=CodeKind.GUEST,
        pin=seal_pin("456789", "both", identity.seal_key.public_key),
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=1),
        lock_ids=(LOCK, NUKI),
        booking_id="b-1",
    )
    doc = doc.model_copy(
        update={
            "locks": (
                *doc.locks,
                LockSpec(id=NUKI, kind=LockKind.NUKI, ref="2A3B4C5D", name="Back"),
            ),
            "codes": (code(identity, "front-only", "345678"), both),
        }
    )
    await cloud.publish_desired(gw, signed(doc, KEY))
    agent = await Agent.open(config(tmp_path / "state", keypad={"port": str(link)}), identity)
    try:
        async with running(agent):

            def latest_complete() -> bool:
                states = cloud.reported(gw)
                return (
                    bool(states)
                    and states[-1].applied_version == 1
                    and any(s.lock_id == LOCK and s.reachable for s in states[-1].locks)
                )

            await eventually(latest_complete)
            report = cloud.reported(gw)[-1]
            locks = {s.lock_id: s for s in report.locks}
            assert locks[LOCK].state is LockState.LOCKED
            assert not locks[NUKI].reachable
            deliveries = {(d.code_id, d.lock_id): d for d in report.codes}
            assert deliveries[("front-only", LOCK)].state is DeliveryState.SET
            assert deliveries[("both", LOCK)].state is DeliveryState.SET
            nuki = deliveries[("both", NUKI)]
            assert nuki.state is DeliveryState.FAILED
            assert nuki.error is not None
            assert "not paired" in nuki.error
            assert ("front-only", NUKI) not in deliveries
            assert report.inventory.keypad_connected
            assert report.inventory.keypad_firmware == "1.0.0"
            assert report.clock.trusted
            assert report.outbox_depth >= 0
            assert report.agent_version
    finally:
        await cloud.close()
        await emulator.stop()


async def test_systemd_hears_ready_status_and_watchdog_while_healthy(
    broker: RunningBroker,
    ca: CertificateAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sock_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    identity = enrolled_state_dir(tmp_path / "state", ca, gw, KEY, broker_port=broker.port)
    agent = await Agent.open(config(tmp_path / "state"), identity)
    received: list[str] = []

    def drain() -> list[str]:
        with contextlib.suppress(BlockingIOError):
            while True:
                received.extend(listener.recv(4096).decode().splitlines())
        return received

    try:
        async with running(agent):
            await eventually(lambda: "WATCHDOG=1" in drain() and agent.sync.status.connected)
            assert "READY=1" in received
            await eventually(lambda: any(s.startswith("STATUS=broker online") for s in drain()))
            # The MQTT side dies: the pings stop, so systemd restarts the agent.
            assert agent._sync_task is not None
            agent._sync_task.cancel()
            await asyncio.sleep(0.3)
            received.clear()
            await asyncio.sleep(0.5)
            assert "WATCHDOG=1" not in drain()
            assert any(line.startswith("STATUS=") for line in received)
        assert "STOPPING=1" in drain()
    finally:
        listener.close()


async def test_a_keypad_flooding_entries_and_garbage_cannot_flood_the_outbox(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    link = tmp_path / "ttyKEYPAD"
    emulator = KeypadEmulator(str(link))
    await emulator.start()
    identity = enrolled_state_dir(tmp_path / "state", ca, gw, KEY, broker_port=1)
    agent = await Agent.open(config(tmp_path / "state", keypad={"port": str(link)}), identity)
    await agent.sync.on_desired(signed(desired(identity, 1, (code(identity, "c", "345678"),)), KEY))
    depth_before = agent.store.sync.outbox.depth
    try:
        async with running(agent):
            keypad = agent.keypad
            assert keypad is not None
            await eventually(lambda: keypad.connected)
            effects = emulator.subscribe()
            outcomes = []
            for i in range(60):  # someone hammering wrong codes as fast as the keypad answers
                emulator.press(f"{900000 + i}#")
                while True:
                    effect = await asyncio.wait_for(effects.get(), 5)
                    if effect["kind"] == "feedback":
                        outcomes.append(effect["outcome"])
                        break
            emulator.inject_garbage(50_000)  # and a line full of noise
            assert outcomes[:4] == ["denied"] * 4
            assert set(outcomes[4:]) == {"locked_out"}
            assert keypad.lockout.state.refused == 55
            await eventually(lambda: keypad.link.frame_errors > 0)
            await asyncio.sleep(0.2)
            added = agent.store.sync.outbox.depth - depth_before
            assert added <= 8, added  # five denials and a lockout, not sixty events
            emulator.press("1#")  # the link still works after the noise
            await eventually(lambda: keypad.link.connected)
    finally:
        await emulator.stop()
