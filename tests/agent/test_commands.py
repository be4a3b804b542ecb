"""Signed remote commands against a real broker, with the keypad controller on a real pty."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nacl.signing import SigningKey

from agent.daemon import Agent
from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker
from simulator.keypad import KeypadEmulator
from sync_protocol.codec import encode_command
from sync_protocol.ids import uuid7
from sync_protocol.models import Command, CommandAction, CommandStatus
from tests.agent.support import (
    LOCK,
    Collector,
    code,
    config,
    desired,
    enrolled_state_dir,
    eventually,
    signed,
)

CLOUD_KEY = SigningKey.generate()


def _command(gw: str, action: CommandAction, lock: str | None = LOCK, **changes: object) -> Command:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "id": uuid7(),
        "gateway_id": gw,
        "action": action,
        "lock_id": lock if action is not CommandAction.SYNC_NOW else None,
        "issued_at": now,
        "expires_at": now + timedelta(seconds=60),
        "requested_by": "host@example.com",
    }
    fields.update(changes)
    return Command.model_validate(fields)


@contextlib.asynccontextmanager
async def site(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[tuple[Agent, Collector, KeypadEmulator, str]]:
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    link = tmp_path / "ttyKEYPAD"
    emulator = KeypadEmulator(str(link))
    await emulator.start()
    identity = enrolled_state_dir(tmp_path / "state", ca, gw, CLOUD_KEY, broker_port=broker.port)
    cloud = await Collector.start(broker, tmp_path / "certs", gw, CLOUD_KEY)
    await cloud.publish_desired(
        gw, signed(desired(identity, 1, (code(identity, "c1", "345678"),)), CLOUD_KEY)
    )
    agent = await Agent.open(config(tmp_path / "state", keypad={"port": str(link)}), identity)
    task = asyncio.create_task(agent.run())
    try:
        await eventually(lambda: agent.sync.status.applied_version == 1)
        await eventually(lambda: agent.keypad is not None and agent.keypad.connected)
        yield agent, cloud, emulator, gw
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await cloud.close()
        await emulator.stop()


async def _result(cloud: Collector, gw: str, command_id: str) -> tuple[object, bytes | None]:
    await eventually(lambda: any(r.command_id == command_id for r, _ in cloud.results(gw)))
    return next((r, c) for r, c in cloud.results(gw) if r.command_id == command_id)


async def test_remote_unlock_pulses_the_strike_once_and_answers_correlated(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    async with site(broker, ca, tmp_path) as (_agent, cloud, emulator, gw):
        effects = emulator.subscribe()
        command = _command(gw, CommandAction.UNLOCK)
        data = encode_command(command, CLOUD_KEY)
        await cloud.send_command(gw, data, command.id.encode())
        result, correlation = await _result(cloud, gw, command.id)
        assert result.status is CommandStatus.OK  # type: ignore[attr-defined]
        assert correlation == command.id.encode()
        pulses = []
        while not effects.empty():
            effect = effects.get_nowait()
            if effect["kind"] == "relay_pulse":
                pulses.append(effect)
        assert len(pulses) == 1
        await eventually(
            lambda: any(
                e.type == "unlocked"
                and e.method == "remote"
                and e.details["command_id"] == command.id
                for e in cloud.events(gw)
            )
        )

        # The same command again (a replay) is refused and changes nothing.
        await cloud.send_command(gw, data, command.id.encode())
        await eventually(
            lambda: len([r for r, _ in cloud.results(gw) if r.command_id == command.id]) == 2
        )
        replay = [r for r, _ in cloud.results(gw) if r.command_id == command.id][1]
        assert replay.status is CommandStatus.REJECTED
        assert replay.reason == "replayed"
        assert not any(e["kind"] == "relay_pulse" for e in _drain(effects))


def _drain(queue: asyncio.Queue[dict[str, object]]) -> list[dict[str, object]]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def test_refused_and_failed_commands_say_why(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    async with site(broker, ca, tmp_path) as (agent, cloud, _emulator, gw):
        now = datetime.now(UTC)
        expired = _command(
            gw,
            CommandAction.UNLOCK,
            issued_at=now - timedelta(minutes=5),
            expires_at=now - timedelta(minutes=4),
        )
        forged = _command(gw, CommandAction.UNLOCK)
        strike_lock = _command(gw, CommandAction.LOCK)
        unknown = _command(gw, CommandAction.UNLATCH, lock="no-such-lock")
        sync_now = _command(gw, CommandAction.SYNC_NOW)
        await cloud.send_command(gw, encode_command(expired, CLOUD_KEY), expired.id.encode())
        await cloud.send_command(
            gw, encode_command(forged, SigningKey.generate()), forged.id.encode()
        )
        for command in (strike_lock, unknown, sync_now):
            await cloud.send_command(gw, encode_command(command, CLOUD_KEY), command.id.encode())
        expected = {
            expired.id: (CommandStatus.REJECTED, "expired"),
            forged.id: (CommandStatus.REJECTED, "unknown_key"),
            strike_lock.id: (CommandStatus.FAILED, "unsupported"),
            unknown.id: (CommandStatus.FAILED, "unknown_lock"),
            sync_now.id: (CommandStatus.OK, None),
        }
        for command_id, (status, reason) in expected.items():
            result, correlation = await _result(cloud, gw, command_id)
            assert (result.status, result.reason) == (status, reason)  # type: ignore[attr-defined]
            assert correlation == command_id.encode()

        def rejected() -> set[object]:
            return {
                e.details["command_id"] for e in cloud.events(gw) if e.type == "command_rejected"
            }

        await eventually(lambda: rejected() == {expired.id, forged.id})
        assert agent.sync.status.connected
