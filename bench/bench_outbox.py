"""Outbox: 100,000 events queued while offline, drained after the broker comes back.

Real processes: Mosquitto, `kasify-cloud serve` (ingest into SQLite), `kasify-agent run`. The events
are written into the agent's outbox through its own store code while the agent is stopped (as a
long outage leaves them); then the agent starts. A tap subscribed to the gateway's events topic
times the drain (every event id through the broker); the cloud's database must then hold every
event exactly once (the agent deletes an event only when the cloud confirms it). The floor is a
bare QoS 1 publish loop through the same broker: one event per message, each waiting for its
PUBACK, as a naive agent would send them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from common import emit

from agent.clock import Clock
from agent.outbox import new_event, queued
from agent.store import Store
from cloud_api.keys import DataDir
from simulator.broker import free_port
from simulator.stack import Api, Stack, provision_property
from sync_protocol.codec import decode_events, encode
from sync_protocol.models import EventBatch, EventType, Method
from sync_protocol.mqtt import MqttSession, TlsFiles
from sync_protocol.topics import Channel, topic

EVENTS = 100_000
FLOOR_MESSAGES = 3_000
TARGET_RATE = 2000.0
WAIT_S = 600.0


def _queue_offline(state: Path) -> list[str]:
    """Write the events into the stopped agent's outbox with its own store code."""
    clock = Clock(synchronized=lambda: True)
    store = Store(state / "agent.db")
    ids: list[str] = []
    try:
        for start in range(0, EVENTS, 5000):
            batch = [
                queued(
                    new_event(
                        EventType.ACCESS_DENIED,
                        clock,
                        method=Method.GATEWAY_KEYPAD,
                        result="denied",
                        details={"reason": "unknown_code", "n": n},
                    )
                )
                for n in range(start, min(start + 5000, EVENTS))
            ]
            store.outbox.enqueue(batch)
            ids += [q.event_id for q in batch]
    finally:
        store.close()
    return ids


def _stored(cloud_db: Path, ids: list[str]) -> int:
    """How many of these event ids the cloud's database holds (each at most once: primary key)."""
    db = sqlite3.connect(f"file:{cloud_db}?mode=ro", uri=True)
    try:
        total = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT count(*) FROM events WHERE id IN ({marks})"  # noqa: S608
            total += int(db.execute(query, chunk).fetchone()[0])
        return total
    finally:
        db.close()


async def _session(stack: Stack, client_id: str) -> MqttSession:
    paths = DataDir(stack.cloud_data)
    tls = TlsFiles(ca=paths.ca_cert, cert=paths.mqtt_cert, key=paths.mqtt_key)
    session = MqttSession(
        client_id=client_id, host="127.0.0.1", port=stack.broker_port, tls=tls.context()
    )
    await session.connect()
    return session


class Tap:
    """Counts the event ids a gateway publishes, as they pass the broker."""

    def __init__(self, session: MqttSession, gateway: str) -> None:
        self.session, self.gateway = session, gateway
        self.seen: set[str] = set()
        self.received = 0
        self.done = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.session.messages():
            for event in decode_events(message.payload, gateway_id=self.gateway).events:
                self.received += 1
                self.seen.add(event.id)
            if len(self.seen) >= EVENTS:
                self.done.set()

    async def close(self) -> None:
        self._task.cancel()
        await self.session.disconnect()


async def _floor(stack: Stack, gateway: str) -> float:
    session = await _session(stack, "bench-floor")
    clock = Clock(synchronized=lambda: True)
    name = topic("bench-floor", Channel.EVENTS)  # nobody ingests it
    payloads = [
        encode(
            EventBatch(
                gateway_id=gateway,
                events=(
                    new_event(
                        EventType.ACCESS_DENIED,
                        clock,
                        method=Method.GATEWAY_KEYPAD,
                        result="denied",
                        details={"reason": "unknown_code", "n": n},
                    ),
                ),
            )
        )
        for n in range(FLOOR_MESSAGES)
    ]
    started = time.perf_counter()
    for payload in payloads:
        await session.publish(name, payload)
    elapsed = time.perf_counter() - started
    await session.disconnect()
    return FLOOR_MESSAGES / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kasify-bench-", dir="/var/tmp") as tmp:
        stack = Stack(Path(tmp), api_port=free_port(), broker_port=free_port())
        api = Api(stack.api_url)
        try:
            stack.init_cloud()
            stack.start_cloud(stack.start_broker())
            api.register_or_login("bench@example.com", "benchmark password", "Bench")
            ids = provision_property(api, "Bench Flat", "Europe/Madrid")
            stack.enroll_agent(ids["enrollment_token"], keypad=False)
            gateway = ids["gateway_id"]
            event_ids = _queue_offline(stack.agent_state)
            cloud_db = stack.cloud_data / "cloud.db"

            async def drain() -> tuple[float, int, float, int]:
                tap = Tap(await _session(stack, "bench-tap"), gateway)
                await tap.session.subscribe(topic(gateway, Channel.EVENTS))
                started = time.perf_counter()
                agent = await asyncio.to_thread(stack.start_agent)
                async with asyncio.timeout(WAIT_S):
                    await tap.done.wait()
                through_broker = time.perf_counter() - started
                deadline = time.monotonic() + WAIT_S
                while (stored := _stored(cloud_db, event_ids)) < EVENTS:
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                in_cloud = time.perf_counter() - started
                received = tap.received
                await tap.close()
                agent.stop()
                return through_broker, received, in_cloud, stored

            through_broker, received, in_cloud, stored = asyncio.run(drain())
            floor_rate = asyncio.run(_floor(stack, gateway))
        finally:
            api.close()
            stack.stop()
    rate = EVENTS / through_broker
    emit(
        {
            "bench": "outbox_drain",
            "events": EVENTS,
            "drain_s": round(through_broker, 2),
            "events_per_s": round(rate),
            "floor_bare_qos1_one_event_per_message_per_s": round(floor_rate),
            "ratio": round(rate / floor_rate, 2),
            "sent_again_by_at_least_once": received - EVENTS,
            "all_stored_in_cloud_after_s": round(in_cloud, 2),
            "cloud_stored": stored,
            "lost": EVENTS - stored,
            "target_events_per_s": TARGET_RATE,
            "met": rate >= TARGET_RATE and rate >= 0.5 * floor_rate and stored == EVENTS,
        }
    )


if __name__ == "__main__":
    main()
