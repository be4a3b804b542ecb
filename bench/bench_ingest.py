"""Ingest throughput: 100,000 events from a real broker into SQLite and into PostgreSQL.

Gateways publish one event per message (an agent sends an entry the moment it happens) while the
consumer's persistent session is away, so the broker holds every event; then the consumer
connects and the clock runs from its first stored event to its last. Consumers, in one run and
on one broker: a bare MQTT 5 subscriber on the same shared subscription that only acknowledges
(the floor), then `kasify-cloud ingest` (a real process: decode, attribute, batch insert, commit,
then acknowledge) on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path

import psycopg
from common import emit
from nacl.public import PrivateKey
from sqlalchemy import func, select

from cloud_api.db import Database, migrate
from cloud_api.keys import init_data_dir
from cloud_api.models import EventCount, Gateway, Property, SmartLock
from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker, start_broker
from simulator.stack import command
from sync_protocol.ids import uuid7
from sync_protocol.mqtt import MqttSession
from sync_protocol.topics import Channel, all_gateways, shared, topic

N_EVENTS = 100_000  # --events to change
GATEWAYS = 20
WINDOW = 200  # concurrent QoS 1 publishes per gateway
EXPIRY_S = 3600
POLL_S = 0.05
DRAIN_TIMEOUT_S = 600.0
START_TIMEOUT_S = 30.0
TARGET_PG_EPS = 5000.0
TARGET_RATIO = 0.5
POSTGRES = os.environ.get(
    "KASIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True, slots=True)
class Site:
    """A gateway and its lock, as stored in the database under test."""

    gateway_id: str
    lock_id: str


def provision(url: str, gateways: int) -> list[Site]:
    """One property per gateway, each with a relay lock, enrolled directly in the database."""
    db = Database(url)
    migrate(db.engine)
    sites = []
    now = datetime.now(UTC)
    with db.session() as session:
        for i in range(gateways):
            prop = Property(
                name=f"Bench {i}",
                timezone="Europe/Madrid",
                check_in_time=clock(15),
                check_out_time=clock(11),
            )
            session.add(prop)
            session.flush()
            gateway = Gateway(
                id=f"gw-bench-{secrets.token_hex(6)}",
                property_id=prop.id,
                name="Bench Pi",
                enrolled_at=now,
                online=True,
                seal_public_key=base64.b64encode(bytes(PrivateKey.generate().public_key)).decode(),
            )
            session.add(gateway)
            session.flush()
            lock = SmartLock(
                property_id=prop.id, gateway_id=gateway.id, kind="relay", device_ref="1", name="D"
            )
            session.add(lock)
            session.flush()
            sites.append(Site(gateway.id, lock.id))
        session.commit()
    db.dispose()
    return sites


def stored(db: Database) -> int:
    """Events stored so far (the counts the ingest keeps), over one pooled connection: a new
    connection per poll would cost the machine more than the query and slow the ingest."""
    with db.session() as session:
        return int(session.scalar(select(func.coalesce(func.sum(EventCount.count), 0))) or 0)


def _body(site: Site, occurred: str) -> bytes:
    event = {
        "id": uuid7(),
        "type": "access_granted",
        "occurred_at": occurred,
        "clock_trusted": True,
        "lock_id": site.lock_id,
        "method": "gateway_keypad",
        "result": "granted",
        "details": {"digits": 6},
    }
    return json.dumps({"v": 1, "gateway_id": site.gateway_id, "events": [event]}).encode()


async def publish_all(broker: RunningBroker, certs: Path, sites: list[Site], total: int) -> float:
    """Publish `total` events spread over the gateways; returns the seconds it took."""
    per = total // len(sites)
    occurred = datetime.now(UTC).isoformat()

    async def one(site: Site) -> None:
        session = MqttSession(
            client_id=site.gateway_id,
            host=broker.host,
            port=broker.port,
            tls=broker.client_tls(site.gateway_id, certs).context(),
        )
        await session.connect()
        name = topic(site.gateway_id, Channel.EVENTS)
        pending: set[asyncio.Task[None]] = set()
        for _ in range(per):
            pending.add(asyncio.create_task(session.publish(name, _body(site, occurred))))
            if len(pending) >= WINDOW:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        await asyncio.gather(*pending)
        await session.disconnect()

    started = time.perf_counter()
    await asyncio.gather(*(one(site) for site in sites))
    return time.perf_counter() - started


async def end_session(broker: RunningBroker, certs: Path, client_id: str) -> None:
    """Connect once with a clean start and no expiry: the broker forgets the session."""
    session = MqttSession(
        client_id=client_id,
        host=broker.host,
        port=broker.port,
        tls=broker.client_tls("cloud", certs).context(),
        clean_start=True,
    )
    await session.connect()
    await session.disconnect()


async def bare_rate(broker: RunningBroker, certs: Path, sites: list[Site]) -> float:
    """Events per second a subscriber that only acknowledges receives from the broker."""
    client_id = f"bench-bare-{secrets.token_hex(4)}"
    tls = broker.client_tls("cloud", certs)

    def session(clean: bool) -> MqttSession:
        return MqttSession(
            client_id=client_id,
            host=broker.host,
            port=broker.port,
            tls=tls.context(),
            clean_start=clean,
            session_expiry_s=EXPIRY_S,
        )

    first = session(True)
    await first.connect()
    await first.subscribe(shared(all_gateways(Channel.EVENTS)))
    await first.disconnect()
    await publish_all(broker, certs, sites, N_EVENTS)
    again = session(False)
    await again.connect()
    received = 0
    started = ended = 0.0
    async with asyncio.timeout(DRAIN_TIMEOUT_S):
        async for _ in again.messages():
            received += 1
            if received == 1:
                started = time.perf_counter()
            if received == N_EVENTS:
                ended = time.perf_counter()
                break
    await again.disconnect()
    await end_session(broker, certs, client_id)
    return (N_EVENTS - 1) / (ended - started)


def _worker_env(data_dir: Path, url: str, broker: RunningBroker, client_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KASIFY_DATA_DIR=str(data_dir),
        KASIFY_DATABASE_URL=url,
        KASIFY_BROKER_HOST=broker.host,
        KASIFY_BROKER_PORT=str(broker.port),
        KASIFY_MQTT_CLIENT_ID=client_id,
        KASIFY_MQTT_SESSION_EXPIRY_S=str(EXPIRY_S),
    )
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`kasify-cloud ingest`, waiting until it has subscribed."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command("kasify-cloud", "ingest"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while "connected to the broker" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ingest worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(POLL_S)
    return process


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def ingest_rate(
    broker: RunningBroker, certs: Path, data_dir: Path, url: str, name: str
) -> tuple[float, int]:
    """Events per second `kasify-cloud ingest` stores from the broker; and how many it stored."""
    sites = provision(url, GATEWAYS)
    client_id = f"bench-ingest-{name}-{secrets.token_hex(3)}"
    env = _worker_env(data_dir, url, broker, client_id)
    log = data_dir / f"ingest-{name}.log"
    stop_worker(start_worker(env, log))  # subscribe once; the session stays with the broker
    await publish_all(broker, certs, sites, N_EVENTS)
    worker = start_worker(env, log)
    started = ended = 0.0
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    count = 0
    db = Database(url)
    try:
        while count < N_EVENTS and time.monotonic() < deadline:
            count = stored(db)
            if count and not started:
                started = time.perf_counter()
            await asyncio.sleep(POLL_S)
        ended = time.perf_counter()
    finally:
        stop_worker(worker)
        db.dispose()
        await end_session(broker, certs, client_id)
    if count < N_EVENTS:
        raise RuntimeError(
            f"{name}: only {count} of {N_EVENTS} events stored:\n{log.read_text()[-3000:]}"
        )
    return N_EVENTS / (ended - started), count


def _pg_schema() -> tuple[str, str] | None:
    plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
    schema = f"kasify_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error:
        return None
    return schema, f"{POSTGRES}?options=-csearch_path%3D{schema}"


def _drop(schema: str) -> None:
    plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def run(root: Path) -> dict[str, object]:
    ca = CertificateAuthority.create("Kasify Bench CA")
    broker = start_broker(root / "broker", ca)
    certs = root / "certs"
    data_dir = root / "cloud"
    init_data_dir(data_dir, ca)
    result: dict[str, object] = {"bench": "ingest", "events": N_EVENTS, "gateways": GATEWAYS}
    try:
        floor_sites = provision(f"sqlite:///{root / 'floor.db'}", GATEWAYS)
        floor = await bare_rate(broker, certs, floor_sites)
        result["floor_bare_subscriber_eps"] = round(floor)
        sqlite_eps, _ = await ingest_rate(
            broker, certs, data_dir, f"sqlite:///{root / 'ingest.db'}", "sqlite"
        )
        result["sqlite_eps"] = round(sqlite_eps)
        result["sqlite_ratio"] = round(sqlite_eps / floor, 2)
        pg = _pg_schema()
        if pg is None:
            result["postgresql_eps"] = None
        else:
            schema, url = pg
            try:
                pg_eps, _ = await ingest_rate(broker, certs, data_dir, url, "postgresql")
            finally:
                _drop(schema)
            result["postgresql_eps"] = round(pg_eps)
            result["postgresql_ratio"] = round(pg_eps / floor, 2)
            result["met"] = pg_eps >= TARGET_PG_EPS and pg_eps / floor >= TARGET_RATIO
    finally:
        broker.stop()
    result["target_postgresql_eps"] = TARGET_PG_EPS
    result["target_ratio"] = TARGET_RATIO
    return result


def main() -> None:
    global N_EVENTS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=N_EVENTS)
    N_EVENTS = parser.parse_args().events
    with tempfile.TemporaryDirectory(prefix="kasify-bench-ingest-") as tmp:
        emit(asyncio.run(run(Path(tmp))))


if __name__ == "__main__":
    main()
