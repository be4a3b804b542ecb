"""What the MQTT tests share: the app with its lifespan on a real broker, and a gateway's view."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from cloud_api.app import create_app
from cloud_api.settings import Settings
from simulator.broker import RunningBroker
from sync_protocol.codec import VerifiedDesired, decode_desired
from sync_protocol.ids import uuid7
from sync_protocol.models import Event, EventBatch
from sync_protocol.mqtt import Message, MqttSession
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import PUBLIC_URL
from tests.cloud_api.helpers import FakeAgent, Host

WAIT_S = 5.0
POLL_S = 0.02


def settings_for(data_dir: Path, broker: RunningBroker, *, mqtt: bool = True) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'cloud.db'}",
        broker_host=broker.host,
        broker_port=broker.port,
        mqtt_enabled=mqtt,
        public_url=PUBLIC_URL,
        broker_reload_command=None,
        # A session per test that ends with it: an offline member of the shared subscription
        # would otherwise be handed its share of every later test's events.
        mqtt_client_id=f"cloud-test-{uuid.uuid4().hex[:12]}",
        mqtt_session_expiry_s=0,
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan (publisher and ingest) running on this event loop."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud.test") as client:
            if settings.mqtt_enabled:
                await until(lambda: app.state.ctx.sync.connected, "the cloud to connect")
            yield app, client
    app.state.ctx.db.dispose()


async def until(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll `check` until it is true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")


def event_batch(gateway_id: str, **fields: Any) -> tuple[str, bytes]:
    """One event from a gateway, as the agent publishes it."""
    event = Event(
        id=fields.pop("id", uuid7()),
        type=fields.pop("type", "access_granted"),
        occurred_at=fields.pop("occurred_at", datetime.now().astimezone()),
        clock_trusted=True,
        method="gateway_keypad",
        **fields,
    )
    return event.id, EventBatch(gateway_id=gateway_id, events=(event,)).model_dump_json().encode()


async def receive(session: MqttSession, accept: Callable[[Message], bool]) -> Message:
    async with asyncio.timeout(WAIT_S):
        async for message in session.messages():
            if accept(message):
                return message
    raise AssertionError("the gateway's session closed")


@dataclass
class GatewayView:
    """What an agent holds: its keys, its session, and the last applied desired state."""

    agent: FakeAgent
    session: MqttSession
    applied: VerifiedDesired | None = None

    async def next_desired(self) -> VerifiedDesired:
        """Wait for a newer, valid, signed desired state and apply it."""
        found: list[VerifiedDesired] = []

        def accept(message: Message) -> bool:
            if message.topic != topic(self.agent.gateway_id, Channel.DESIRED):
                return False
            verified = decode_desired(
                message.payload,
                self.agent.verify_keys,
                gateway_id=self.agent.gateway_id,
                applied_version=self.applied.state.version if self.applied else 0,
                applied_digest=self.applied.digest if self.applied else None,
            )
            if verified.duplicate:
                return False
            found.append(verified)
            return True

        await receive(self.session, accept)
        self.applied = found[0]
        return found[0]

    async def publish(self, channel: Channel, payload: bytes) -> None:
        """Publish as this gateway on one of its own topics."""
        await self.session.publish(topic(self.agent.gateway_id, channel), payload)


async def connect_gateway(agent: FakeAgent, broker: RunningBroker, directory: Path) -> MqttSession:
    tls = agent.tls_files(directory)
    session = MqttSession(
        client_id=agent.gateway_id, host=broker.host, port=broker.port, tls=tls.context()
    )
    await session.connect()
    await session.subscribe(
        topic(agent.gateway_id, Channel.DESIRED), topic(agent.gateway_id, Channel.ACK)
    )
    return session


async def new_host(client: httpx.AsyncClient) -> Host:
    response = await client.post(
        "/auth/register", json={"email": f"mqtt-{uuid7()}@example.com", "password": "x" * 12}
    )
    assert response.status_code == 201, response.text
    return Host(client, response.json()["token"], "mqtt")
