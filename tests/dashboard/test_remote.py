"""Remote unlock from the dashboard through a real broker: the signed command reaches a gateway,
its answer comes back as a message the host reads."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud_api.keys import init_data_dir
from cloud_api.models import Gateway
from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker
from sync_protocol.codec import decode_command
from sync_protocol.models import CommandResult
from sync_protocol.mqtt import MqttSession
from sync_protocol.topics import Channel, topic
from tests.cloud_api.helpers import FakeAgent, Host, enroll
from tests.cloud_api.mqtt_support import running, settings_for, until
from tests.dashboard.support import PASSWORD, Browser


class AnsweringGateway:
    """A gateway's command side: verifies each command and answers with `status`."""

    def __init__(self, agent: FakeAgent, session: MqttSession) -> None:
        self.agent = agent
        self.session = session
        self.status = "ok"

    async def serve(self) -> None:
        """Answer every command on its response topic."""
        async for message in self.session.messages():
            command = decode_command(
                message.payload,
                self.agent.verify_keys,
                gateway_id=self.agent.gateway_id,
                now=datetime.now(UTC),
                seen=lambda _id: False,
            )
            assert message.response_topic is not None
            ok = self.status == "ok"
            result = CommandResult(
                command_id=command.id,
                gateway_id=self.agent.gateway_id,
                status=self.status,
                reason=None if ok else "jammed",
                detail="strike released" if ok else "motor blocked",
                finished_at=datetime.now(UTC),
            )
            await self.session.publish(
                message.response_topic,
                result.model_dump_json().encode(),
                correlation_data=message.correlation_data,
            )


@contextlib.asynccontextmanager
async def answering(gateway: AnsweringGateway) -> AsyncIterator[AnsweringGateway]:
    """Run the gateway's answering loop for the block."""
    task = asyncio.create_task(gateway.serve())
    try:
        yield gateway
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await gateway.session.disconnect()


@pytest.fixture
def data_dir(tmp_path: Path, ca: CertificateAuthority) -> Path:
    """A cloud data directory sharing the test broker's CA."""
    directory = tmp_path / "cloud"
    init_data_dir(directory, ca)
    return directory


async def test_unlock_from_the_dashboard(
    broker: RunningBroker, data_dir: Path, tmp_path: Path
) -> None:
    async with running(settings_for(data_dir, broker)) as (app, client):
        email = f"host-{secrets.token_hex(4)}@example.com"
        registered = await client.post(
            "/auth/register", json={"email": email, "password": PASSWORD}
        )
        host = Host(client, registered.json()["token"], email)
        prop = await host.new_property()
        agent = await enroll(client, await host.new_gateway(prop["id"]))
        lock = await host.new_lock(prop["id"], agent.gateway_id)
        session = MqttSession(
            client_id=agent.gateway_id,
            host=broker.host,
            port=broker.port,
            tls=agent.tls_files(tmp_path / "gw").context(),
        )
        await session.connect()
        await session.subscribe(topic(agent.gateway_id, Channel.CMD))
        await session.publish(topic(agent.gateway_id, Channel.PRESENCE), b"online", retain=True)

        def online() -> bool:
            with app.state.ctx.db.session() as db:
                gateway = db.get(Gateway, agent.gateway_id)
                return gateway is not None and gateway.online

        await until(online, "the gateway to be online")

        async with Browser(app) as browser, answering(AnsweringGateway(agent, session)) as gw:
            assert (await browser.login(email)).status_code == 303
            await browser.page(f"/app/properties/{prop['id']}")
            path = f"/app/locks/{lock['id']}/action"
            done = await browser.post(path, {"action": "unlock", "confirm": "yes"})
            assert "relay 1 unlocked." in await browser.follow(done)
            gw.status = "failed"
            jammed = await browser.post(path, {"action": "lock", "confirm": "yes"})
            assert "The gateway could not lock relay 1: motor blocked." in (
                await browser.follow(jammed)
            )
