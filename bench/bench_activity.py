"""Activity feed: latency of GET /timeline/activity with 1,000,000 events stored.

A real `kasify-cloud serve` (MQTT off) on PostgreSQL (and on SQLite unless --db says otherwise).
100 properties hold 10,000 events each. Two hosts ask for the newest pages (0-9, size 20, in a
random order): one member of 10 properties, one of all 100. Floor in the same run: GET /account
(authentication and a trivial answer) through the same server.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import secrets
import sqlite3
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import httpx
import psycopg
from common import emit, summary
from nacl.public import PrivateKey

from cloud_api.db import Database, migrate
from cloud_api.keys import init_data_dir
from cloud_api.models import EventCount, Gateway, Membership, Property, Role, SmartLock
from cloud_api.schemas.auth import RegisterCreate
from cloud_api.services.auth import register
from simulator.broker import free_port, listening
from simulator.stack import command
from sync_protocol.ids import uuid7

EVENTS = 1_000_000
PROPERTIES = 100
SMALL_HOST_PROPERTIES = 10
SAMPLES = 300
WARMUP = 20
PAGES = 10
SIZE = 20
TARGET_P99_MS = 50.0
START_TIMEOUT_S = 60.0
POSTGRES = os.environ.get(
    "KASIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
COLUMNS = (
    "id",
    "gateway_id",
    "property_id",
    "type",
    "occurred_at",
    "received_at",
    "clock_trusted",
    "lock_id",
    "code_id",
    "booking_id",
    "task_id",
    "method",
    "result",
    "details",
)
TYPES = ("access_granted", "access_denied", "door_opened", "door_closed", "locked", "battery_low")


def provision(url: str) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """Properties with a gateway and a lock each, and two hosts; returns sites and tokens."""
    db = Database(url)
    migrate(db.engine)
    sites = []
    now = datetime.now(UTC)
    with db.session() as session:
        tokens = {}
        users = {}
        for name in ("small", "large"):
            issued = register(
                session,
                RegisterCreate.model_validate(
                    {"email": f"{name}@bench.example", "password": "x" * 12}
                ),
                timedelta(days=1),
            )
            tokens[name], users[name] = issued.token, issued.row.user.id
        for i in range(PROPERTIES):
            prop = Property(
                name=f"Flat {i:03d}",
                timezone="Europe/Madrid",
                check_in_time=clock(15),
                check_out_time=clock(11),
            )
            session.add(prop)
            session.flush()
            gateway = Gateway(
                property_id=prop.id,
                name="Pi",
                enrolled_at=now,
                seal_public_key=base64.b64encode(bytes(PrivateKey.generate().public_key)).decode(),
            )
            session.add(gateway)
            session.flush()
            lock = SmartLock(
                property_id=prop.id, gateway_id=gateway.id, kind="relay", device_ref="1", name="D"
            )
            session.add(lock)
            session.add(Membership(user_id=users["large"], property_id=prop.id, role=Role.OWNER))
            if i < SMALL_HOST_PROPERTIES:
                session.add(
                    Membership(user_id=users["small"], property_id=prop.id, role=Role.OWNER)
                )
            session.flush()
            sites.append((prop.id, gateway.id, lock.id))
            session.add(EventCount(property_id=prop.id, count=EVENTS // PROPERTIES))
        session.commit()
    db.dispose()
    return sites, tokens


def _rows(sites: list[tuple[str, str, str]]) -> Any:
    """1,000,000 events over the last ~30 days, spread over the properties."""
    start = datetime.now(UTC) - timedelta(days=30)
    rng = random.Random(7)
    per = EVENTS // len(sites)
    step_s = 30 * 86400 / per
    for pid, gateway_id, lock_id in sites:
        for n in range(per):
            at = start + timedelta(seconds=n * step_s + rng.random())
            yield (
                uuid7(int(at.timestamp() * 1000)),
                gateway_id,
                pid,
                TYPES[n % len(TYPES)],
                at,
                at,
                True,
                lock_id,
                None,
                None,
                None,
                "gateway_keypad",
                "granted",
                json.dumps({"n": n}),
            )


def load_postgres(schema: str, sites: list[tuple[str, str, str]]) -> None:
    """COPY the events in, then ANALYZE."""
    plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, options=f"-csearch_path={schema}") as conn:
        with conn.cursor().copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in _rows(sites):
                copy.write_row(row)
        conn.execute("ANALYZE")
        conn.commit()


def load_sqlite(path: Path, sites: list[tuple[str, str, str]]) -> None:
    """executemany in one transaction, then ANALYZE."""
    conn = sqlite3.connect(path)
    placeholders = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({placeholders})"  # noqa: S608
    batch: list[tuple[Any, ...]] = []
    for row in _rows(sites):
        at = row[4].replace(tzinfo=None).isoformat(sep=" ")
        batch.append((*row[:4], at, at, *row[6:]))
        if len(batch) == 50_000:
            conn.executemany(sql, batch)
            batch = []
    conn.executemany(sql, batch)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def serve(data_dir: Path, url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`kasify-cloud serve` with MQTT off, once /healthz answers."""
    env = {
        **os.environ,
        "KASIFY_DATA_DIR": str(data_dir),
        "KASIFY_DATABASE_URL": url,
        "KASIFY_MQTT_ENABLED": "false",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            command("kasify-cloud", "serve", "--port", str(port)),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not listening("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the cloud did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return process


def measure(base: str, token: str, path: str, pages: bool) -> list[float]:
    """Latencies of sequential requests (after a warm-up)."""
    rng = random.Random(11)
    headers = {"Authorization": f"Bearer {token}"}
    times = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for i in range(SAMPLES + WARMUP):
            params = {"page": rng.randrange(PAGES), "size": SIZE} if pages else None
            started = time.perf_counter()
            response = http.get(path, params=params)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
            if pages:
                body = response.json()
                assert len(body["activities"]) == SIZE
                assert body["total"] >= SIZE
            if i >= WARMUP:
                times.append(elapsed)
    return times


def run_one(root: Path, database: str) -> dict[str, Any]:
    data_dir = root / database
    init_data_dir(data_dir)
    schema = None
    if database == "postgresql":
        schema = f"kasify_activity_{secrets.token_hex(4)}"
        plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{data_dir / 'cloud.db'}"
    process = None
    try:
        sites, tokens = provision(url)
        started = time.perf_counter()
        if schema is not None:
            load_postgres(schema, sites)
        else:
            load_sqlite(data_dir / "cloud.db", sites)
        loaded_s = time.perf_counter() - started
        port = free_port()
        process = serve(data_dir, url, port, root / f"cloud-{database}.log")
        base = f"http://127.0.0.1:{port}"
        small = summary(measure(base, tokens["small"], "/timeline/activity", True))
        large = summary(measure(base, tokens["large"], "/timeline/activity", True))
        floor = summary(measure(base, tokens["small"], "/account", False))
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
        if schema is not None:
            plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    worst = max(small["p99_ms"], large["p99_ms"])
    return {
        f"{database}_load_s": round(loaded_s, 1),
        f"{database}_host_10_properties": small,
        f"{database}_host_100_properties": large,
        f"{database}_floor_get_account": floor,
        f"{database}_p99_ms": worst,
        f"{database}_ratio_p99": round(worst / floor["p99_ms"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("postgresql", "sqlite", "both"), default="both")
    args = parser.parse_args()
    databases = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    try:
        plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
        psycopg.connect(plain, connect_timeout=3).close()
    except psycopg.Error:
        databases = [d for d in databases if d != "postgresql"]
    result: dict[str, Any] = {
        "bench": "activity_feed",
        "events": EVENTS,
        "properties": PROPERTIES,
        "page_size": SIZE,
        "samples": SAMPLES,
    }
    with tempfile.TemporaryDirectory(prefix="kasify-bench-activity-") as tmp:
        for database in databases:
            result.update(run_one(Path(tmp), database))
    worst = max(result[f"{d}_p99_ms"] for d in databases)
    result.update({"p99_ms": worst, "target_p99_ms": TARGET_P99_MS, "met": worst <= TARGET_P99_MS})
    emit(result)


if __name__ == "__main__":
    main()
