"""Remote lock actions through a real broker: a signed command goes out with a response topic
and correlation data, a fake agent answers on cmd/result, the API answers with the result."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud_api.keys import init_data_dir
from cloud_api.pki import CertificateAuthority
from cloud_api.sync.ingest import Ingest
from simulator.broker import RunningBroker
from sync_protocol.codec import decode_command
from sync_protocol.models import Command, CommandResult
from sync_protocol.mqtt import Message, MqttSession
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import FakeAgent, Host, enroll
from tests.cloud_api.mqtt_support import new_host, running, settings_for


@pytest.fixture
def data_dir(tmp_path: Path, ca: CertificateAuthority) -> Path:
    """A cloud data directory sharing the test broker's CA."""
    directory = tmp_path / "cloud"
    init_data_dir(directory, ca)
    return directory


class Agent:
    """The agent's side of commands: verify, remember, answer (or stay silent)."""

    def __init__(self, agent: FakeAgent, session: MqttSession) -> None:
        self.agent = agent
        self.session = session
        self.received: list[tuple[Command, Message]] = []
        self.answer: str | None = "ok"
        self.correlation: bytes | None = None  # None: echo the command's

    async def serve(self) -> None:
        """Answer every command on its response topic."""
        async for message in self.session.messages():
            if not message.topic.endswith("/cmd"):
                continue
            command = decode_command(
                message.payload,
                self.agent.verify_keys,
                gateway_id=self.agent.gateway_id,
                now=datetime.now(UTC),
                seen=lambda _id: False,
            )
            self.received.append((command, message))
            if self.answer is None or message.response_topic is None:
                continue
            result = CommandResult(
                command_id=command.id,
                gateway_id=self.agent.gateway_id,
                status=self.answer,
                reason=None if self.answer == "ok" else "jammed",
                detail=f"{command.action.value} done" if self.answer == "ok" else "motor blocked",
                finished_at=datetime.now(UTC),
            )
            await self.session.publish(
                message.response_topic,
                result.model_dump_json().encode(),
                correlation_data=self.correlation or message.correlation_data,
            )


@contextlib.asynccontextmanager
async def serving(agent: Agent) -> AsyncIterator[Agent]:
    """Run the agent's answering loop for the block."""
    task = asyncio.create_task(agent.serve())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await agent.session.disconnect()


async def _site(host: Host, broker: RunningBroker, directory: Path) -> tuple[str, Agent]:
    prop = await host.new_property(backupCodeCount=0)
    agent = await enroll(host.client, await host.new_gateway(prop["id"]))
    lock = await host.new_lock(prop["id"], agent.gateway_id, "nuki", "5A1B2C")
    tls = agent.tls_files(directory)
    session = MqttSession(
        client_id=agent.gateway_id, host=broker.host, port=broker.port, tls=tls.context()
    )
    await session.connect()
    await session.subscribe(topic(agent.gateway_id, Channel.CMD))
    await session.publish(topic(agent.gateway_id, Channel.PRESENCE), b"online", retain=True)
    return lock["id"], Agent(agent, session)


async def test_remote_unlock_round_trip(
    broker: RunningBroker, data_dir: Path, tmp_path: Path
) -> None:
    async with running(settings_for(data_dir, broker)) as (_app, client):
        host = await new_host(client)
        lock_id, agent = await _site(host, broker, tmp_path / "gw")
        gateway_path = f"/gateways/{agent.agent.gateway_id}"
        await _wait_online(host, gateway_path)
        async with serving(agent):
            done = await host.post(f"/smartlocks/{lock_id}/actions", {"action": "unlock"})
            assert done.status_code == 200, done.text
            result = done.json()
            assert (result["state"], result["detail"], result["action"]) == (
                "ok",
                "unlock done",
                "unlock",
            )
            [(command, message)] = agent.received
            assert (command.id, command.lock_id, command.action.value) == (
                result["id"],
                lock_id,
                "unlock",
            )
            assert message.response_topic == topic(agent.agent.gateway_id, Channel.CMD_RESULT)
            assert message.correlation_data == command.id.encode()
            assert (command.expires_at - command.issued_at).total_seconds() <= 600
            polled = await host.get(f"/smartlocks/{lock_id}/actions/{result['id']}")
            assert polled.json() == result

            agent.answer = "failed"
            jammed = (await host.post(f"/smartlocks/{lock_id}/actions", {"action": "lock"})).json()
            assert (jammed["state"], jammed["reason"]) == ("failed", "jammed")

            # No answer yet: 202 with the command to poll.
            agent.answer = None
            pending = await host.post(
                f"/smartlocks/{lock_id}/actions", {"action": "unlatch"}, params={"wait": 0}
            )
            assert pending.status_code == 202
            assert pending.json()["state"] == "pending"

            # A result whose correlation data does not match is dropped.
            agent.answer, agent.correlation = "ok", b"someone-else"
            ignored = await host.post(
                f"/smartlocks/{lock_id}/actions", {"action": "lock"}, params={"wait": 0.5}
            )
            assert ignored.status_code == 202


async def test_remote_actions_need_an_online_gateway_and_the_right_role(
    broker: RunningBroker, data_dir: Path, tmp_path: Path
) -> None:
    async with running(settings_for(data_dir, broker)) as (_app, client):
        host = await new_host(client)
        lock_id, agent = await _site(host, broker, tmp_path / "gw")
        await _wait_online(host, f"/gateways/{agent.agent.gateway_id}")
        await agent.session.publish(
            topic(agent.agent.gateway_id, Channel.PRESENCE), b"offline", retain=True
        )
        await _wait_online(host, f"/gateways/{agent.agent.gateway_id}", online=False)
        offline = await host.post(f"/smartlocks/{lock_id}/actions", {"action": "unlock"})
        assert offline.status_code == 409
        assert "offline" in offline.json()["detail"]
        bad = await host.post(f"/smartlocks/{lock_id}/actions", {"action": "open-sesame"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "action"
        await agent.session.disconnect()


async def test_without_the_broker_a_remote_action_is_503(alice: Host, cloud: Cloud) -> None:
    prop = await alice.new_property()
    agent = await enroll(alice.client, await alice.new_gateway(prop["id"]))
    lock = await alice.new_lock(prop["id"], agent.gateway_id)
    never_seen = await alice.post(f"/smartlocks/{lock['id']}/actions", {"action": "unlock"})
    assert never_seen.status_code == 409
    Ingest(cloud.ctx.db).handle(topic(agent.gateway_id, Channel.PRESENCE), b"online")
    # This app runs without MQTT: the command cannot leave.
    response = await alice.post(f"/smartlocks/{lock['id']}/actions", {"action": "unlock"})
    assert response.status_code == 503
    assert "retry" in response.json()["detail"]


async def _wait_online(host: Host, path: str, *, online: bool = True) -> None:
    async def check() -> bool:
        return bool((await host.get(path)).json()["online"] is online)

    for _ in range(250):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never became online={online}")
