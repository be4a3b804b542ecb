"""Two ingest workers on one shared subscription split the events: none lost, none stored twice,
even while one of them is away; malformed bodies are dropped without stopping either."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select

from cloud_api.metrics import Metrics
from cloud_api.models import Event
from cloud_api.settings import Settings
from cloud_api.sync.service import SyncService
from simulator.broker import RunningBroker
from simulator.stack import command
from sync_protocol.mqtt import MqttSession
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud, api_settings
from tests.cloud_api.helpers import FakeAgent, Host, enroll
from tests.cloud_api.mqtt_support import event_batch, until

SESSION_EXPIRY_S = 600  # persistent, so a worker that is away keeps its share queued
WAIT_S = 20.0


class Worker:
    """An ingest worker (the same service `kasify-cloud ingest` runs) with its own metrics."""

    def __init__(self, cloud: Cloud, broker: RunningBroker, client_id: str) -> None:
        self.settings = api_settings(
            cloud.data_dir,
            cloud.ctx.settings.db_url,
            mqtt_enabled=True,
            broker_host=broker.host,
            broker_port=broker.port,
            mqtt_client_id=client_id,
            mqtt_session_expiry_s=SESSION_EXPIRY_S,
        )
        self.cloud = cloud
        self.metrics = Metrics()
        self.service: SyncService | None = None

    @property
    def stored(self) -> float:
        """New events this worker stored."""
        return self.metrics.registry.get_sample_value("kasify_ingest_events_stored_total") or 0.0

    async def start(self) -> None:
        """Connect and subscribe."""
        self.service = SyncService(
            self.settings, self.cloud.ctx.db, self.cloud.ctx.keys, self.metrics, ingest=True
        )
        await self.service.start()
        await until(lambda: self.service is not None and self.service.connected, "a worker")

    async def stop(self) -> None:
        """Disconnect; the broker keeps the session and queues this worker's share."""
        if self.service is not None:
            await self.service.stop()
            self.service = None


async def _gateway_session(agent: FakeAgent, broker: RunningBroker, certs: Path) -> MqttSession:
    session = MqttSession(
        client_id=agent.gateway_id,
        host=broker.host,
        port=broker.port,
        tls=agent.tls_files(certs / agent.gateway_id).context(),
    )
    await session.connect()
    return session


async def _publish(sessions: list[tuple[MqttSession, str]], per_gateway: int) -> list[str]:
    ids = []
    for session, gateway_id in sessions:
        for _ in range(per_gateway):
            event_id, body = event_batch(gateway_id)
            ids.append(event_id)
            await session.publish(topic(gateway_id, Channel.EVENTS), body)
    return ids


def _count(cloud: Cloud, ids: list[str]) -> int:
    with cloud.ctx.db.session() as session:
        return session.scalar(select(func.count()).where(Event.id.in_(ids))) or 0


async def _end_session(broker: RunningBroker, certs: Path, client_id: str) -> None:
    session = MqttSession(
        client_id=client_id,
        host=broker.host,
        port=broker.port,
        tls=broker.client_tls("cloud", certs).context(),
        clean_start=True,
    )
    await session.connect()
    await session.disconnect()


async def test_two_workers_split_the_events_with_none_lost_or_doubled(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud, broker: RunningBroker, tmp_path: Path
) -> None:
    agents = []
    for _ in range(3):
        prop = await alice.new_property(backupCodeCount=0)
        agents.append(await enroll(client, await alice.new_gateway(prop["id"])))
    run = uuid.uuid4().hex[:8]
    first, second = (Worker(cloud, broker, f"ingest-{name}-{run}") for name in ("a", "b"))
    sessions = [(await _gateway_session(a, broker, tmp_path), a.gateway_id) for a in agents]
    try:
        await first.start()
        await second.start()
        sent = await _publish(sessions, 40)
        # Redelivered batches and garbage along the way change nothing.
        session, gateway_id = sessions[0]
        _, again = event_batch(gateway_id, id=sent[0])
        await session.publish(topic(gateway_id, Channel.EVENTS), again)
        await session.publish(topic(gateway_id, Channel.EVENTS), b"{not json")
        await session.publish(topic(gateway_id, Channel.EVENTS), b'{"v": 1, "events": []}')
        await until(lambda: _count(cloud, sent) == len(sent), "the first events", WAIT_S)
        await until(lambda: first.stored + second.stored == len(sent), "the counts", WAIT_S)
        assert first.stored > 0
        assert second.stored > 0

        # The second worker goes away; its share waits for it at the broker.
        await second.stop()
        taken_by_second = second.stored
        more = await _publish(sessions, 30)
        await until(lambda: _count(cloud, more) > 0, "the first worker's share", WAIT_S)
        await second.start()
        everything = sent + more
        await until(lambda: _count(cloud, everything) == len(everything), "every event", WAIT_S)
        await until(lambda: first.stored + second.stored == len(everything), "the counts", WAIT_S)
        assert second.stored > taken_by_second  # its queued share arrived when it came back
        feed = (await alice.get("/timeline/activity", params={"size": 100})).json()
        assert feed["total"] >= len(everything)
    finally:
        for worker in (first, second):
            await worker.stop()
        for session, _ in sessions:
            await session.disconnect()
        for worker in (first, second):
            await _end_session(broker, tmp_path / "cloud-certs", worker.settings.client_id)


async def test_kasify_cloud_ingest_runs_as_its_own_process(
    broker: RunningBroker, tmp_path: Path, cloud: Cloud, alice: Host, client: httpx.AsyncClient
) -> None:
    prop = await alice.new_property(backupCodeCount=0)
    agent = await enroll(client, await alice.new_gateway(prop["id"]))
    settings: Settings = cloud.ctx.settings
    client_id = f"ingest-cli-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "KASIFY_DATA_DIR": str(cloud.data_dir),
        "KASIFY_DATABASE_URL": settings.db_url,
        "KASIFY_BROKER_HOST": broker.host,
        "KASIFY_BROKER_PORT": str(broker.port),
        "KASIFY_MQTT_CLIENT_ID": client_id,
        "KASIFY_MQTT_SESSION_EXPIRY_S": "0",
        "KASIFY_LOG_FORMAT": "json",
    }
    log = tmp_path / "ingest.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command("kasify-cloud", "ingest"), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        await until(lambda: "connected to the broker" in log.read_text(), "the worker", WAIT_S)
        session = await _gateway_session(agent, broker, tmp_path)
        sent = await _publish([(session, agent.gateway_id)], 3)
        await session.disconnect()
        await until(lambda: _count(cloud, sent) == 3, "the worker to store", WAIT_S)
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            code = await process.wait()
    assert code == 0, log.read_text()[-2000:]
    lines = log.read_text().splitlines()
    assert any('"msg": "ingest worker' in line and '"level": "info"' in line for line in lines)
