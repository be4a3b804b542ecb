"""Fan-out: 1,000 gateways (real MQTT subscribers with their own certificates), 10,000 bookings
created through the API → every gateway holds a signed desired state with all its codes.

Real processes: Mosquitto and `kasify-cloud serve` (PostgreSQL when reachable, else SQLite). The
setup (1,000 properties, gateways enrolled with CSRs, one lock each, 1,000 TLS subscriptions) is not
timed. Then 10 bookings per property are created by 16 HTTP clients in parallel, each working
through its properties: one import request per property (`--mode single`: one POST per booking).
The clock stops when the last gateway has verified (signature, version) a desired state holding
every one of its guest codes. Per gateway: from its last booking's response to that moment.

Floors in the same run: as many requests to a trivial endpoint (GET /healthz) with the same
clients, and one bare 2 KiB message to each of the 1,000 gateways' topics until all received.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from common import emit, summary
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nacl.public import PrivateKey
from nacl.signing import VerifyKey

from cloud_api.keys import DataDir
from cloud_api.pki import key_pem, write_public, write_secret
from simulator.broker import free_port
from simulator.stack import Stack
from sync_protocol.codec import decode_desired
from sync_protocol.errors import ProtocolError
from sync_protocol.mqtt import MqttSession, TlsFiles
from sync_protocol.topics import Channel, topic

GATEWAYS = 1000
BOOKINGS_PER_GATEWAY = 10
CLIENTS = 16
MODE = "import"  # --mode single: one POST per booking instead of 10 per import request
CONNECT_PARALLEL = 50
TARGET_TOTAL_S = 30.0
WAIT_S = 300.0
FLOOR_PAYLOAD = b"floor" + b"x" * 2043  # about the size of a desired state with a dozen codes
POSTGRES = os.environ.get(
    "KASIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class FanoutStack(Stack):
    """The demo's stack, with the database chosen by the benchmark."""

    database_url: str | None = None

    def cloud_env(self, broker_pid: int | None = None) -> dict[str, str]:
        """Also point the cloud at the benchmark's database."""
        env = super().cloud_env(broker_pid)
        if self.database_url:
            env["KASIFY_DATABASE_URL"] = self.database_url
        return env


@dataclass
class Gateway:
    """One simulated gateway: its ids, keys, and what it has verified so far."""

    property_id: str
    gateway_id: str
    directory: Path
    expected: set[str] = field(default_factory=set)
    have: set[str] = field(default_factory=set)
    version: int = 0
    digest: str | None = None
    last_booking_at: float = 0.0
    done_at: float = 0.0
    floor_at: float = 0.0
    session: MqttSession | None = None


class Progress:
    """Counts gateways that have all their codes (and the floor's message); wakes the waiter."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.with_codes = 0
        self.with_floor = 0
        self.codes = asyncio.Event()
        self.floor = asyncio.Event()

    def codes_done(self) -> None:
        """One more gateway holds all its codes."""
        self.with_codes += 1
        if self.with_codes == self.total:
            self.codes.set()

    def floor_done(self) -> None:
        """One more gateway got the floor's message."""
        self.with_floor += 1
        if self.with_floor == self.total:
            self.floor.set()


PROGRESS: Progress


class Api:
    """An async client logged in as the benchmark host."""

    def __init__(self, base_url: str) -> None:
        limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
        self.http = httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits)
        self.headers: dict[str, str] = {}

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        """One request; raise with the cloud's answer on anything unexpected."""
        response = await self.http.request(method, path, json=body, headers=self.headers)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None


def _csr(gateway_id: str, directory: Path) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    directory.mkdir(parents=True, exist_ok=True)
    write_secret(directory / "gw.key", key_pem(key))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gateway_id)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


async def _provision(api: Api, root: Path, index: int) -> tuple[Gateway, list[str]]:
    prop = await api.call(
        "POST", "/properties", {"name": f"Flat {index}", "timezone": "Europe/Madrid"}, 201
    )
    created = await api.call("POST", f"/properties/{prop['id']}/gateways", {"name": "Pi"}, 201)
    directory = root / "gw" / created["id"]
    seal = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
    enrolled = await api.call(
        "POST",
        "/gateways/enroll",
        {
            "token": created["enrollmentToken"],
            "csr": _csr(created["id"], directory),
            "sealPublicKey": seal,
            "agentVersion": "bench",
        },
        201,
    )
    write_public(directory / "gw.crt", enrolled["certificate"].encode())
    write_public(directory / "ca.crt", enrolled["caCertificate"].encode())
    lock = {"kind": "relay", "deviceRef": "1", "name": "Door", "gatewayId": created["id"]}
    await api.call("POST", f"/properties/{prop['id']}/smartlocks", lock, 201)
    return Gateway(prop["id"], created["id"], directory), enrolled["verifyKeys"]


async def _gather_limited(jobs: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(run(job) for job in jobs))


async def _subscribe(gateway: Gateway, port: int, keys: list[VerifyKey]) -> None:
    tls = TlsFiles(
        ca=gateway.directory / "ca.crt",
        cert=gateway.directory / "gw.crt",
        key=gateway.directory / "gw.key",
    )
    session = MqttSession(
        client_id=gateway.gateway_id, host="127.0.0.1", port=port, tls=tls.context()
    )
    await session.connect()
    await session.subscribe(topic(gateway.gateway_id, Channel.DESIRED))
    gateway.session = session

    async def receive() -> None:
        async for message in session.messages():
            try:
                verified = decode_desired(
                    message.payload,
                    keys,
                    gateway_id=gateway.gateway_id,
                    applied_version=gateway.version,
                    applied_digest=gateway.digest,
                )
            except ProtocolError:
                if message.payload == FLOOR_PAYLOAD and not gateway.floor_at:
                    gateway.floor_at = time.perf_counter()
                    PROGRESS.floor_done()
                continue  # stale, or the floor's bare message
            if verified.duplicate:
                continue
            gateway.version, gateway.digest = verified.state.version, verified.digest
            gateway.have = {code.id for code in verified.state.codes}
            if gateway.expected and gateway.expected <= gateway.have and not gateway.done_at:
                gateway.done_at = time.perf_counter()
                PROGRESS.codes_done()

    asyncio.get_running_loop().create_task(receive())


async def _create_bookings(api: Api, gateways: list[Gateway]) -> None:
    queue: asyncio.Queue[Gateway] = asyncio.Queue()
    for gateway in gateways:
        queue.put_nowait(gateway)
    start = date.today()

    def body(i: int) -> dict[str, str]:
        day = start + timedelta(days=i)
        return {"guestName": f"Guest {i}", "from": str(day), "to": str(day + timedelta(days=1))}

    async def worker() -> None:
        while not queue.empty():
            gateway = queue.get_nowait()
            path = f"/properties/{gateway.property_id}/bookings"
            if MODE == "import":
                items = [body(i) for i in range(BOOKINGS_PER_GATEWAY)]
                made = await api.call("POST", f"{path}/import", {"bookings": items}, 201)
                bookings = made["bookings"]
            else:
                bookings = [
                    await api.call("POST", path, body(i), 201) for i in range(BOOKINGS_PER_GATEWAY)
                ]
            gateway.expected.update(b["accessCodes"][0]["id"] for b in bookings)
            gateway.last_booking_at = time.perf_counter()
            if gateway.expected <= gateway.have and not gateway.done_at:
                gateway.done_at = time.perf_counter()
                PROGRESS.codes_done()

    await asyncio.gather(*(worker() for _ in range(CLIENTS)))


async def _http_floor(api: Api, count: int) -> float:
    """The same number of requests as the bookings took, to a trivial endpoint."""
    started = time.perf_counter()
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            await api.call("GET", "/healthz")

    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return time.perf_counter() - started


async def _mqtt_floor(stack: Stack, gateways: list[Gateway]) -> float:
    """One bare 2 KiB message to every gateway's desired topic, until all 1,000 received it."""
    paths = DataDir(stack.cloud_data)
    tls = TlsFiles(ca=paths.ca_cert, cert=paths.mqtt_cert, key=paths.mqtt_key)
    session = MqttSession(
        client_id=f"bench-floor-{secrets.token_hex(3)}",
        host="127.0.0.1",
        port=stack.broker_port,
        tls=tls.context(),
    )
    await session.connect()
    started = time.perf_counter()
    payload = FLOOR_PAYLOAD
    await asyncio.gather(
        *(session.publish(topic(g.gateway_id, Channel.DESIRED), payload) for g in gateways)
    )
    async with asyncio.timeout(WAIT_S):
        await PROGRESS.floor.wait()
    elapsed = max(g.floor_at for g in gateways) - started
    await session.disconnect()
    return elapsed


async def run(root: Path, database: str) -> dict[str, Any]:
    stack = FanoutStack(root, api_port=free_port(), broker_port=free_port())
    url = None
    schema = None
    if database == "postgresql":
        schema = f"kasify_fanout_{secrets.token_hex(4)}"
        plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    stack.database_url = url
    api = Api(stack.api_url)
    global PROGRESS
    PROGRESS = Progress(GATEWAYS)
    try:
        stack.init_cloud()
        stack.start_cloud(stack.start_broker())
        registered = await api.call(
            "POST", "/auth/register", {"email": "fanout@example.com", "password": "x" * 12}, 201
        )
        api.headers = {"Authorization": f"Bearer {registered['token']}"}
        made = await _gather_limited([_provision(api, root, i) for i in range(GATEWAYS)], CLIENTS)
        gateways = [gateway for gateway, _ in made]
        keys = [VerifyKey(base64.b64decode(k)) for k in made[0][1]]
        await _gather_limited(
            [_subscribe(g, stack.broker_port, keys) for g in gateways], CONNECT_PARALLEL
        )
        await asyncio.sleep(2.0)  # the retained documents of the setup arrive

        started = time.perf_counter()
        await _create_bookings(api, gateways)
        created = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WAIT_S):
                await PROGRESS.codes.wait()
        missing = sum(1 for g in gateways if not g.done_at)
        finished = max(g.done_at for g in gateways) if not missing else time.perf_counter()
        per_gateway = [max(0.0, g.done_at - g.last_booking_at) for g in gateways if g.done_at]
        requests = GATEWAYS * (1 if MODE == "import" else BOOKINGS_PER_GATEWAY)
        floor_http = await _http_floor(api, requests)
        floor_mqtt = await _mqtt_floor(stack, gateways)
        for gateway in gateways:
            if gateway.session is not None:
                await gateway.session.disconnect()
    finally:
        await api.http.aclose()
        stack.stop()
        if schema is not None:
            plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    total = finished - started
    return {
        "bench": "fanout",
        "database": database,
        "mode": MODE,
        "gateways": GATEWAYS,
        "bookings": GATEWAYS * BOOKINGS_PER_GATEWAY,
        "total_s": round(total, 2),
        "bookings_created_s": round(created - started, 2),
        "gateways_missing_codes": missing,
        "per_gateway": summary(per_gateway) if per_gateway else None,
        "floor_http_same_requests_s": round(floor_http, 2),
        "floor_mqtt_publish_to_all_s": round(floor_mqtt, 3),
        "ratio_total_to_floors": round(total / (floor_http + floor_mqtt), 2),
        "target_total_s": TARGET_TOTAL_S,
        "met": missing == 0 and total <= TARGET_TOTAL_S,
    }


def main() -> None:
    global GATEWAYS, MODE
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateways", type=int, default=GATEWAYS)
    parser.add_argument("--mode", choices=("import", "single"), default=MODE)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default=None)
    args = parser.parse_args()
    GATEWAYS, MODE = args.gateways, args.mode
    database = args.db
    if database is None:
        try:
            plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
            psycopg.connect(plain, connect_timeout=3).close()
            database = "postgresql"
        except psycopg.Error:
            database = "sqlite"
    with tempfile.TemporaryDirectory(prefix="kasify-bench-fanout-") as tmp:
        emit(asyncio.run(run(Path(tmp), database)))


if __name__ == "__main__":
    main()
