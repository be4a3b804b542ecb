"""UniFi Access: PIN reconciliation cost, and PIN at a reader → agent event latency.

The controller is `kasify-sim unifi serve`, its own process, over real TLS; the agent side is the
real `UnifiIntegration` in this process (pinned client, notifications WebSocket, reconciler).
- reconcile: 200 codes over 3 doors from scratch, then 20 changes (10 windows moved, 5 codes
  revoked, 5 new): wall time until every code is reported `set`, and HTTP requests sent.
- entry latency: a PIN typed at a reader through the emulator's control socket → the agent's
  event sink has the ACCESS_GRANTED event (log entry pushed over the WebSocket, parsed, mapped).
The floor is a bare HTTPS request to the same emulator over a kept-alive pinned connection.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import emit, summary

from agent.clock import Clock
from agent.locks.base import DriverContext, LockCode
from agent.locks.unifi.client import UnifiClient
from agent.locks.unifi.config import UnifiConfig
from agent.locks.unifi.integration import UnifiIntegration
from agent.locks.unifi.trust import TrustRecord, fetch_certificate
from simulator.stack import command
from simulator.unifi.control import ControlClient
from sync_protocol.models import CodeKind, DeliveryState, Event, EventType

CODES = 200
CHANGES = 20
SAMPLES = 300
FLOOR_SAMPLES = 300
WARMUP = 20
WAIT_S = 30.0
TARGET_P99_MS = 100.0  # a guest's entry should reach the outbox well within a tenth of a second


def _codes(now: float) -> list[LockCode]:
    return [
        LockCode(
            code_id=f"c{i:03d}",
            kind=CodeKind.GUEST,
            pin=f"{200000 + 7919 * i % 700000:06d}",
            starts_at=now - 3600,
            ends_at=now + 3 * 86400,
            label=f"Guest {i}",
            booking_id=f"b{i:03d}",
        )
        for i in range(CODES)
    ]


def _changed(codes: list[LockCode], now: float) -> list[LockCode]:
    moved = [
        LockCode(
            c.code_id, c.kind, c.pin, c.starts_at, (c.ends_at or now) + 86400, c.label, c.booking_id
        )
        for c in codes[:10]
    ]
    new = [
        LockCode(f"n{i}", CodeKind.GUEST, f"90000{i}", now - 60, now + 86400, "New", f"bn{i}")
        for i in range(5)
    ]
    return moved + codes[15:] + new  # codes 10..14 revoked


class Sink:
    """The agent's event sink; wakes whoever waits for the next entry event."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        if event.type == EventType.ACCESS_GRANTED.value:
            self.arrived[str(event.details.get("unifi_log_id"))] = time.perf_counter()
            self.changed.set()


async def _until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


def _split(codes: list[LockCode], doors: list[str]) -> dict[str, list[LockCode]]:
    """Each code on one door, the same door in every round (c007 → door 7 % 3)."""
    per_door: dict[str, list[LockCode]] = {f"lock-{i}": [] for i in range(len(doors))}
    for code in codes:
        number = int(code.code_id[1:])
        per_door[f"lock-{number % len(doors)}"].append(code)
    return per_door


async def _reconcile(unifi: UnifiIntegration, codes: list[LockCode], doors: list[str]) -> Any:
    client = unifi._client
    assert client is not None
    before, started = client.requests, time.perf_counter()
    for lock_id, lock_codes in _split(codes, doors).items():
        unifi.driver(lock_id, doors[int(lock_id[5:])], {}).set_codes(lock_codes)

    def done() -> bool:
        states = [s for lock in unifi._drivers for s in unifi.code_states(lock).values()]
        return len(states) == len(codes) and all(s.state is DeliveryState.SET for s in states)

    await _until(done, "every code to be set")
    return {
        "s": round(time.perf_counter() - started, 3),
        "requests": client.requests - before,
    }


async def _run(info: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    cert = await fetch_certificate(info["url"])
    TrustRecord.of(info["url"], cert).save(state_dir)
    doors = [d["id"] for d in info["doors"]]
    sink = Sink()
    ctx = DriverContext(state_dir=state_dir, clock=Clock(), emit=sink)
    unifi = UnifiIntegration(UnifiConfig(token=info["token"]), ctx)
    for i, door in enumerate(doors):
        unifi.driver(f"lock-{i}", door, {})
    await unifi.start()
    control = ControlClient(info["control"])
    try:
        await _until(lambda: unifi.online, "the integration to connect")
        now = time.time()
        codes = _codes(now)
        scratch = await _reconcile(unifi, codes, doors)
        incremental = await _reconcile(unifi, _changed(codes, now), doors)
        pin = codes[0].pin  # on lock-0 = door 1
        samples = []
        for i in range(SAMPLES + WARMUP):
            sink.changed.clear()
            started = time.perf_counter()
            answer = await control.type_pin(doors[0], pin)
            await _until(lambda a=answer: a["log_id"] in sink.arrived, "the entry event")
            if i >= WARMUP:
                samples.append(sink.arrived[answer["log_id"]] - started)
        floor = await _floor(info, cert.fingerprint)
    finally:
        await unifi.stop()
    return {"scratch": scratch, "incremental": incremental, "samples": samples, "floor": floor}


async def _floor(info: dict[str, Any], fingerprint: str) -> list[float]:
    client = UnifiClient.for_record(TrustRecord(info["url"], fingerprint), info["token"])
    times = []
    try:
        for i in range(FLOOR_SAMPLES + WARMUP):
            started = time.perf_counter()
            await client.door(info["doors"][0]["id"])
            if i >= WARMUP:
                times.append(time.perf_counter() - started)
    finally:
        await client.aclose()
    return times


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kasify-bench-unifi-") as tmp:
        root = Path(tmp)
        info_file, control = root / "info.json", root / "unifi.sock"
        emulator = subprocess.Popen(
            command(
                "kasify-sim",
                "unifi",
                "serve",
                "--port",
                "0",
                "--doors",
                "3",
                "--unlock-seconds",
                "0.2",
                "--control",
                str(control),
                "--info-file",
                str(info_file),
            ),
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + WAIT_S
            while not (info_file.exists() and control.exists()):
                if emulator.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("kasify-sim unifi serve did not start")
                time.sleep(0.02)
            info = json.loads(info_file.read_text())
            state_dir = root / "agent"
            state_dir.mkdir(mode=0o700)
            result = asyncio.run(_run(info, state_dir))
        finally:
            emulator.terminate()
            emulator.wait(10)
    ours, base = summary(result["samples"]), summary(result["floor"])
    emit(
        {
            "bench": "unifi",
            "reconcile_200_from_scratch": result["scratch"],
            "reconcile_20_changes": result["incremental"],
            "entry_samples": SAMPLES,
            "entry_latency": ours,
            "floor_https_request": base,
            "ratio_p50": round(ours["p50_ms"] / base["p50_ms"], 1),
            "ratio_p99": round(ours["p99_ms"] / base["p99_ms"], 1),
            "target_p99_ms": TARGET_P99_MS,
            "met": ours["p99_ms"] <= TARGET_P99_MS,
        }
    )


if __name__ == "__main__":
    main()
