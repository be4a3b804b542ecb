"""Dashboard page load: server time per page with 50 properties, 500 locks and 100,000 events.

A real `kasify-cloud serve` (MQTT off, JSON logs) on SQLite and on PostgreSQL (when reachable).
One host owns 50 properties, each with an online gateway that has reported, 10 locks, 10 upcoming
bookings whose guest codes are `set` on every lock, 2 tasks with crew codes, one code that failed
on a lock (so the attention list has work to do) and 2,000 events, all written straight through
the models. The host logs in through the login form; then sequential requests of the overview
(`/`), a random property page, its "All activity" page (50 entries) and the gateways page. Server
time is what the cloud's request log says it spent on each request (`duration_ms`); the floor, in
the same run and the same log, is `GET /healthz`. Target: p99 server time at most 100 ms per page.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import secrets
import subprocess
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import httpx
import psycopg
from common import emit, summary
from nacl.public import PrivateKey
from sqlalchemy import insert, text

from cloud_api.db import Database, migrate
from cloud_api.keys import init_data_dir
from cloud_api.models import (
    AccessCode,
    Booking,
    CodeDelivery,
    Event,
    EventCount,
    Gateway,
    Membership,
    Property,
    Role,
    SmartLock,
    Task,
)
from cloud_api.schemas.auth import RegisterCreate
from cloud_api.services.auth import register
from simulator.broker import free_port, listening
from simulator.stack import command
from sync_protocol.ids import uuid7

PROPERTIES = 50
LOCKS_PER_PROPERTY = 10
EVENTS = 100_000
BOOKINGS_PER_PROPERTY = 10
TASKS_PER_PROPERTY = 2
SAMPLES = 300  # per page
WARMUP = 20
TARGET_P99_MS = 100.0
START_TIMEOUT_S = 60.0
EMAIL = "host@bench.example"
PASSWORD = "bench-password-1"
POSTGRES = os.environ.get(
    "KASIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PAGES = {
    "overview": "/",
    "property": "/app/properties/{property_id}",
    "activity": "/app/properties/{property_id}/activity",
    "gateways": "/app/gateways",
    "floor_healthz": "/healthz",
}
EVENT_TYPES = ("access_granted", "access_denied", "door_opened", "door_closed", "locked")


def _reported(now: datetime) -> dict[str, Any]:
    return {
        "v": 1,
        "applied_version": 3,
        "agent_version": "0.1.0",
        "uptime_s": 86400.0,
        "reported_at": now.isoformat(),
        "clock": {"synchronized": True, "trusted": True},
        "outbox_depth": 0,
    }


def seed(url: str) -> list[str]:
    """The host, its properties and everything in them; returns the property ids."""
    db = Database(url)
    migrate(db.engine)
    now = datetime.now(UTC)
    today = now.date()
    rng = random.Random(7)
    property_ids = []
    with db.session() as session:
        host = register(
            session,
            RegisterCreate.model_validate({"email": EMAIL, "password": PASSWORD}),
            timedelta(days=1),
        ).row.user
        for i in range(PROPERTIES):
            prop = Property(
                name=f"Flat {i:02d}",
                timezone="Europe/Madrid",
                check_in_time=clock(15),
                check_out_time=clock(11),
            )
            session.add(prop)
            session.flush()
            property_ids.append(prop.id)
            session.add(Membership(user_id=host.id, property_id=prop.id, role=Role.OWNER))
            gateway = Gateway(
                property_id=prop.id,
                name="Entrance Pi",
                enrolled_at=now,
                online=True,
                last_seen_at=now,
                reported_at=now,
                reported_state=_reported(now),
                desired_version=3,
                agent_version="0.1.0",
                seal_public_key=base64.b64encode(bytes(PrivateKey.generate().public_key)).decode(),
            )
            session.add(gateway)
            session.flush()
            locks = [
                SmartLock(
                    property_id=prop.id,
                    gateway_id=gateway.id,
                    kind="relay",
                    device_ref=str(n),
                    name=f"Door {n}",
                    lock_state="locked",
                    battery_charge=rng.randrange(5, 100),
                    battery_critical=n == 0 and i % 10 == 0,
                    door_state="closed",
                    reachable=True,
                    last_seen_at=now,
                    status_reported_at=now,
                )
                for n in range(LOCKS_PER_PROPERTY)
            ]
            session.add_all(locks)
            session.flush()
            codes = _bookings(session, prop, today) + _tasks(session, prop, host.id, now)
            session.flush()
            deliveries = [
                {
                    "code_id": code.id,
                    "lock_id": lock.id,
                    "gateway_id": gateway.id,
                    "state": "failed" if (code is codes[0] and lock is locks[0]) else "set",
                    "error": "keypad memory full"
                    if (code is codes[0] and lock is locks[0])
                    else None,
                    "updated_at": now,
                }
                for code in codes
                for lock in locks
            ]
            session.execute(insert(CodeDelivery), deliveries)
            session.execute(
                insert(Event), list(_events(prop.id, gateway.id, locks, codes, now, rng))
            )
            session.add(EventCount(property_id=prop.id, count=EVENTS // PROPERTIES))
        session.commit()
    with db.engine.connect() as conn:  # a live database has statistics: give the planner its own
        conn.execute(text("ANALYZE"))
        conn.commit()
    db.dispose()
    return property_ids


def _bookings(session: Any, prop: Property, today: date) -> list[AccessCode]:
    codes = []
    for n in range(BOOKINGS_PER_PROPERTY):
        check_in = today + timedelta(days=3 * n)
        booking = Booking(
            property_id=prop.id,
            guest_name=f"Guest {n}",
            check_in=check_in,
            check_out=check_in + timedelta(days=2),
            codes=[],
        )
        starts = datetime.combine(check_in, clock(13), UTC)
        code = AccessCode(
            property_id=prop.id,
            kind="guest",
            label=booking.guest_name,
            pin=f"{371000 + n * 7:06d}",
            starts_at=starts,
            ends_at=starts + timedelta(days=2),
        )
        booking.codes.append(code)
        session.add(booking)
        codes.append(code)
    return codes


def _tasks(session: Any, prop: Property, user_id: str, now: datetime) -> list[AccessCode]:
    codes = []
    for n in range(TASKS_PER_PROPERTY):
        starts = now + timedelta(days=n + 1)
        task = Task(
            property_id=prop.id,
            type="cleaning",
            title=f"Turnover {n}",
            starts_at=starts,
            ends_at=starts + timedelta(hours=3),
            start_day=starts.date(),
            end_day=starts.date(),
            created_by=user_id,
        )
        session.add(task)
        session.flush()
        code = AccessCode(
            property_id=prop.id,
            task_id=task.id,
            kind="crew",
            label=task.title,
            pin=f"{482000 + n * 11:06d}",
            starts_at=task.starts_at,
            ends_at=task.ends_at,
        )
        session.add(code)
        codes.append(code)
    return codes


def _events(
    property_id: str,
    gateway_id: str,
    locks: list[SmartLock],
    codes: list[AccessCode],
    now: datetime,
    rng: random.Random,
) -> Any:
    per = EVENTS // PROPERTIES
    start = now - timedelta(days=30)
    step_s = 30 * 86400 / per
    for n in range(per):
        at = start + timedelta(seconds=n * step_s + rng.random())
        code = codes[n % len(codes)] if n % 3 == 0 else None
        yield {
            "id": uuid7(int(at.timestamp() * 1000)),
            "gateway_id": gateway_id,
            "property_id": property_id,
            "type": EVENT_TYPES[n % len(EVENT_TYPES)],
            "occurred_at": at,
            "received_at": at,
            "clock_trusted": True,
            "lock_id": locks[n % len(locks)].id,
            "code_id": code.id if code is not None else None,
            "booking_id": None,
            "task_id": None,
            "method": "gateway_keypad",
            "result": "granted",
            "details": {"n": n},
        }


def serve(data_dir: Path, url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`kasify-cloud serve` with MQTT off and JSON logs, once it listens."""
    env = {
        **os.environ,
        "KASIFY_DATA_DIR": str(data_dir),
        "KASIFY_DATABASE_URL": url,
        "KASIFY_MQTT_ENABLED": "false",
        "KASIFY_LOG_FORMAT": "json",
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


def measure(base: str, property_ids: list[str]) -> dict[str, list[float]]:
    """Log in through the form, then sequential requests of each page; client latencies."""
    rng = random.Random(11)
    times: dict[str, list[float]] = defaultdict(list)
    with httpx.Client(base_url=base, timeout=30) as http:
        login = http.get("/login")
        csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        done = http.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf": csrf})
        if done.status_code != 303:
            raise RuntimeError(f"login failed: {done.status_code} {done.text[:300]}")
        for i in range(SAMPLES + WARMUP):
            for name, template in PAGES.items():
                path = template.format(property_id=rng.choice(property_ids))
                started = time.perf_counter()
                response = http.get(path)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                if i >= WARMUP:
                    times[name].append(elapsed)
    return times


def server_times(log: Path) -> dict[str, list[float]]:
    """Per page, what the cloud's request log says each GET took (after the warm-up)."""
    routes = {template: name for name, template in PAGES.items()}
    found: dict[str, list[float]] = defaultdict(list)
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        name = routes.get(record.get("http_route", ""))
        if name is not None and record.get("http_method") == "GET":
            found[name].append(record["duration_ms"] / 1000)
    return {name: samples[WARMUP:] for name, samples in found.items()}


def run_one(root: Path, database: str) -> dict[str, Any]:
    data_dir = root / database
    init_data_dir(data_dir)
    schema = None
    plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
    if database == "postgresql":
        schema = f"kasify_dashboard_{secrets.token_hex(4)}"
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{data_dir / 'cloud.db'}"
    process = None
    log = root / f"cloud-{database}.log"
    try:
        started = time.perf_counter()
        property_ids = seed(url)
        seeded_s = time.perf_counter() - started
        port = free_port()
        process = serve(data_dir, url, port, log)
        client = measure(f"http://127.0.0.1:{port}", property_ids)
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
        if schema is not None:
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    server = server_times(log)
    floor = summary(server["floor_healthz"])
    pages = {name: summary(server[name]) for name in PAGES if name != "floor_healthz"}
    worst = max(p["p99_ms"] for p in pages.values())
    return {
        f"{database}_seed_s": round(seeded_s, 1),
        f"{database}_server": pages,
        f"{database}_client_p99_ms": {
            name: summary(samples)["p99_ms"] for name, samples in client.items()
        },
        f"{database}_floor_healthz": floor,
        f"{database}_p99_ms": worst,
        f"{database}_ratio_p99": round(worst / floor["p99_ms"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("postgresql", "sqlite", "both"), default="both")
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    try:
        plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
        psycopg.connect(plain, connect_timeout=3).close()
    except psycopg.Error:
        databases = [d for d in databases if d != "postgresql"]
    result: dict[str, Any] = {
        "bench": "dashboard_pages",
        "properties": PROPERTIES,
        "locks": PROPERTIES * LOCKS_PER_PROPERTY,
        "events": EVENTS,
        "samples_per_page": SAMPLES,
    }
    with tempfile.TemporaryDirectory(prefix="kasify-bench-dashboard-") as tmp:
        for database in databases:
            result.update(run_one(Path(tmp), database))
    worst = max(result[f"{d}_p99_ms"] for d in databases)
    result.update({"p99_ms": worst, "target_p99_ms": TARGET_P99_MS, "met": worst <= TARGET_P99_MS})
    emit(result)


if __name__ == "__main__":
    main()
