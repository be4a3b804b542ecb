"""The cloud's persistent session: nothing a gateway publishes is lost while the cloud is away."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from simulator.broker import RunningBroker
from sync_protocol.mqtt import Message, MqttSession
from sync_protocol.topics import Channel, all_gateways, shared, topic

EXPIRY_S = 3600


async def _cloud(broker: RunningBroker, certs: Path, client_id: str, *, clean: bool) -> MqttSession:
    session = MqttSession(
        client_id=client_id,
        host=broker.host,
        port=broker.port,
        tls=broker.client_tls("cloud", certs).context(),
        clean_start=clean,
        session_expiry_s=EXPIRY_S,
        manual_ack=True,
    )
    await session.connect()
    await session.subscribe(shared(all_gateways(Channel.EVENTS)))
    return session


async def _take(session: MqttSession, count: int, prefix: bytes) -> list[Message]:
    got: list[Message] = []
    async with asyncio.timeout(10):
        async for message in session.messages():
            if message.payload.startswith(prefix):
                got.append(message)
            if len(got) == count:
                return got
    raise AssertionError(f"session closed after {len(got)} of {count} messages")


async def test_events_published_while_the_cloud_is_away_are_delivered_later(
    broker: RunningBroker, certs_dir: Path
) -> None:
    cloud_id = f"cloud-test-{uuid.uuid4().hex[:8]}"
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    prefix = gw.encode()
    cloud = await _cloud(broker, certs_dir, cloud_id, clean=True)
    await cloud.disconnect()  # the session (and its shared subscription) outlives the connection

    gateway = MqttSession(
        client_id=gw,
        host=broker.host,
        port=broker.port,
        tls=broker.client_tls(gw, certs_dir).context(),
    )
    await gateway.connect()
    for i in range(5):
        await gateway.publish(topic(gw, Channel.EVENTS), prefix + b"-%d" % i)
    await gateway.disconnect()

    back = await _cloud(broker, certs_dir, cloud_id, clean=False)
    got = await _take(back, 5, prefix)
    assert [m.payload for m in got] == [prefix + b"-%d" % i for i in range(5)]

    # Acknowledge only the first two, as if the cloud crashed before storing the rest.
    for message in got[:2]:
        back.ack(message)
    await asyncio.sleep(0.2)
    await back.disconnect()

    again = await _cloud(broker, certs_dir, cloud_id, clean=False)
    redelivered = await _take(again, 3, prefix)
    assert [m.payload for m in redelivered] == [prefix + b"-%d" % i for i in range(2, 5)]
    for message in redelivered:
        again.ack(message)
    await asyncio.sleep(0.2)
    await again.disconnect()

    # End the session: an offline member of the shared group would take a share of later events.
    done = MqttSession(
        client_id=cloud_id,
        host=broker.host,
        port=broker.port,
        tls=broker.client_tls("cloud", certs_dir).context(),
        clean_start=True,
    )
    await done.connect()
    await done.disconnect()
