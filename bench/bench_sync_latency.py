"""Sync latency: booking created through the API → its code usable at the agent.

Real processes: Mosquitto, `kasify-cloud serve`, `kasify-agent run`. The agent records a
`desired_applied` event the moment the new codes are in its decision index; the benchmark, as a
cloud-side MQTT client, timestamps that event's arrival, so the figure includes one extra broker hop
back. The floor is a bare MQTT publish → receive round trip through the same broker, same run.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from common import emit, summary

from cloud_api.keys import DataDir
from simulator.broker import free_port
from simulator.stack import Api, Stack, provision_property
from sync_protocol.codec import decode_events
from sync_protocol.mqtt import MqttSession, TlsFiles
from sync_protocol.topics import Channel, topic

SAMPLES = 100
FLOOR_SAMPLES = 300
WARMUP = 5
PAUSE_S = 0.05  # between bookings, so each one is its own desired version
TARGET_P99_MS = 300.0
WAIT_S = 10.0


async def _session(stack: Stack, client_id: str) -> MqttSession:
    paths = DataDir(stack.cloud_data)
    tls = TlsFiles(ca=paths.ca_cert, cert=paths.mqtt_cert, key=paths.mqtt_key)
    session = MqttSession(
        client_id=client_id, host="127.0.0.1", port=stack.broker_port, tls=tls.context()
    )
    await session.connect()
    return session


async def _floor(stack: Stack) -> list[float]:
    session = await _session(stack, "bench-floor")
    name = topic("bench-floor", Channel.DESIRED)
    await session.subscribe(name)
    messages = session.messages()
    times = []
    for i in range(FLOOR_SAMPLES + WARMUP):
        start = time.perf_counter()
        await session.publish(name, b"x" * 64, qos=1)
        async with asyncio.timeout(WAIT_S):
            await anext(messages)
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    await session.disconnect()
    return times


async def _measure(stack: Stack, api: Api, ids: dict[str, str]) -> list[float]:
    gateway = ids["gateway_id"]
    session = await _session(stack, "bench-sync")
    await session.subscribe(topic(gateway, Channel.EVENTS))
    applied: asyncio.Queue[tuple[float, int]] = asyncio.Queue()

    async def collect() -> None:
        async for message in session.messages():
            arrived = time.perf_counter()
            for event in decode_events(message.payload, gateway_id=gateway).events:
                if event.type == "desired_applied":
                    applied.put_nowait((arrived, int(event.details["version"] or 0)))

    collector = asyncio.create_task(collect())
    latest = int(api.call("GET", f"/gateways/{gateway}")["desiredVersion"])
    times = []
    start_day = date.today() + timedelta(days=1)
    for i in range(SAMPLES + WARMUP):
        day = start_day + timedelta(days=i)
        body = {"guestName": f"Guest {i}", "from": str(day), "to": str(day + timedelta(days=1))}
        start = time.perf_counter()
        await asyncio.to_thread(
            api.call, "POST", f"/properties/{ids['property_id']}/bookings", body, 201
        )
        while True:
            async with asyncio.timeout(WAIT_S):
                arrived, version = await applied.get()
            if version > latest:
                latest = version
                break
        if i >= WARMUP:
            times.append(arrived - start)
        await asyncio.sleep(PAUSE_S)
    collector.cancel()
    await session.disconnect()
    return times


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kasify-bench-") as tmp:
        stack = Stack(Path(tmp), api_port=free_port(), broker_port=free_port())
        api = Api(stack.api_url)
        try:
            stack.init_cloud()
            stack.start_cloud(stack.start_broker())
            api.register_or_login("bench@example.com", "benchmark password", "Bench")
            ids = provision_property(api, "Bench Flat", "Europe/Madrid")
            stack.enroll_agent(ids["enrollment_token"], keypad=False)
            stack.start_agent()
            ours = summary(asyncio.run(_measure(stack, api, ids)))
            base = summary(asyncio.run(_floor(stack)))
        finally:
            api.close()
            stack.stop()
    emit(
        {
            "bench": "sync_latency",
            "samples": SAMPLES,
            **ours,
            "floor_mqtt_round_trip": base,
            "ratio_p50": round(ours["p50_ms"] / base["p50_ms"], 1),
            "ratio_p99": round(ours["p99_ms"] / base["p99_ms"], 1),
            "target_p99_ms": TARGET_P99_MS,
            "met": ours["p99_ms"] <= TARGET_P99_MS,
        }
    )


if __name__ == "__main__":
    main()
