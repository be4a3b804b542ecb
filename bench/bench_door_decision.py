"""Door decision: KEY_ENTRY frame written on the pty → RELAY_PULSE frame read back, 10,000 codes.

The agent runs as its own process (`kasify-agent run`, broker unreachable: the door must not care)
with 10,000 cached codes applied through its real desired-state path. This script plays the keypad
controller on the pty master with the reference device logic. The floor is a bare pty echo round
trip of a frame of the same size, measured in the same run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
import tty
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import emit, summary
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from agent.config import AgentConfig
from agent.daemon import Agent
from agent.identity import Identity, ensure_pin_key, write_file
from cloud_api.pki import CertificateAuthority, cert_pem, key_pem
from firmware_bridge.device import FeedbackShown, KeypadDevice, RelayPulsed
from simulator.stack import command
from sync_protocol.codec import encode_desired
from sync_protocol.models import CodeKind, DesiredCode, DesiredState, LockKind, LockSpec
from sync_protocol.sealing import seal_pin

CODES = 10_000
SAMPLES = 1_000
WARMUP = 50
TARGET_P99_MS = 20.0
READ_TIMEOUT_S = 2.0


def _pins(count: int) -> list[str]:
    rng = random.Random(7)
    pins: set[str] = set()
    while len(pins) < count:
        pins.add("".join(rng.choice("123456789") for _ in range(6)))
    return sorted(pins)


def _state_dir(root: Path, signing: SigningKey) -> Identity:
    ca = CertificateAuthority.create("bench")
    key, cert = ca.issue_client("gw-bench")
    write_file(root / "tls" / "client.key", key_pem(key), secret=True)
    write_file(root / "tls" / "client.crt", cert_pem(cert), secret=False)
    write_file(root / "tls" / "ca.crt", cert_pem(ca.cert), secret=False)
    write_file(root / "seal.key", bytes(PrivateKey.generate()), secret=True)
    verify = [base64.b64encode(bytes(signing.verify_key)).decode()]
    write_file(root / "verify_keys.json", json.dumps(verify).encode(), secret=False)
    ensure_pin_key(root)
    info = {
        "gateway_id": "gw-bench",
        "property_id": "p",
        "cloud_url": "http://127.0.0.1:1",
        "broker": {"host": "127.0.0.1", "port": 1},
    }
    write_file(root / "gateway.json", json.dumps(info).encode(), secret=False)
    return Identity.load(root)


async def _apply(
    config: AgentConfig, identity: Identity, pins: list[str], signing: SigningKey
) -> float:
    now = datetime.now(UTC)
    codes = tuple(
        DesiredCode(
            id=f"c{i}",
            kind=CodeKind.GUEST,
            pin=seal_pin(pin, f"c{i}", identity.seal_key.public_key),
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=3),
            lock_ids=("lock-front",),
            booking_id=f"b{i}",
        )
        for i, pin in enumerate(pins)
    )
    state = DesiredState(
        gateway_id="gw-bench",
        property_id="p",
        version=1,
        issued_at=now,
        timezone="Europe/Madrid",
        horizon_until=now + timedelta(days=14),
        locks=(LockSpec(id="lock-front", kind=LockKind.RELAY, ref="keypad"),),
        codes=codes,
    )
    agent = await Agent.open(config, identity)
    started = time.perf_counter()
    applied = await agent.sync.on_desired(encode_desired(state, signing))
    elapsed = time.perf_counter() - started
    await agent.store.close()
    if not applied:
        raise SystemExit("the agent refused the benchmark's desired state")
    return elapsed


class Controller:
    """The keypad controller side of the pty, running the reference device logic."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.device = KeypadDevice()
        self.t0 = time.monotonic()
        self.write(self.device.boot(self.now()))

    def now(self) -> float:
        return time.monotonic() - self.t0

    def write(self, data: bytes) -> None:
        if data:
            os.write(self.master, data)

    def pump(self, until: type, timeout_s: float = READ_TIMEOUT_S) -> float:
        """Read and answer host frames until an effect of type `until`; return when it came."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                data = os.read(self.master, 4096)
                now = self.now()
                self.write(self.device.receive(data, now))
                for effect in self.device.take_effects():
                    if isinstance(effect, until):
                        return time.perf_counter()
            self.write(self.device.tick(self.now()))
        raise SystemExit(f"no {until.__name__} within {timeout_s} s")

    def wait_link(self, timeout_s: float = 30.0) -> None:
        """Serve the pty until the agent opened it and both hellos were acknowledged."""
        deadline = time.monotonic() + timeout_s
        link = self.device.link
        while not (
            link.rx_session is not None and link.tx_session is not None and not link.unacked
        ):
            if time.monotonic() > deadline:
                raise SystemExit("the agent did not open the keypad link")
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                self.write(self.device.receive(os.read(self.master, 4096), self.now()))
            self.write(self.device.tick(self.now()))
        self.device.take_effects()

    def enter(self, code: str) -> float:
        """Type a code; return seconds from writing KEY_ENTRY to reading RELAY_PULSE."""
        for digit in code:
            self.device.press(digit, self.now())
        frame = self.device.press("#", self.now())
        start = time.perf_counter()
        self.write(frame)
        pulsed = self.pump(RelayPulsed)
        elapsed = pulsed - start
        self.pump(FeedbackShown)
        self.device.take_effects()
        return elapsed


def _echo_floor(frame_len: int, samples: int) -> list[float]:
    master, slave = os.openpty()
    tty.setraw(master)
    echo = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os,sys,tty; fd=os.open(sys.argv[1], os.O_RDWR|os.O_NOCTTY); tty.setraw(fd)\n"
            "while True:\n d=os.read(fd,4096)\n if not d: break\n os.write(fd,d)",
            os.ttyname(slave),
        ],
    )
    os.close(slave)
    payload = b"\x01" * frame_len
    times = []
    try:
        time.sleep(0.3)
        for i in range(samples + WARMUP):
            start = time.perf_counter()
            os.write(master, payload)
            got = b""
            while len(got) < frame_len:
                select.select([master], [], [], READ_TIMEOUT_S)
                got += os.read(master, 4096)
            if i >= WARMUP:
                times.append(time.perf_counter() - start)
    finally:
        echo.kill()
        os.close(master)
    return times


def main() -> None:
    pins = _pins(CODES)
    signing = SigningKey.generate()
    with tempfile.TemporaryDirectory(prefix="kasify-bench-") as tmp:
        root = Path(tmp)
        master, slave = os.openpty()
        tty.setraw(master)
        port = os.ttyname(slave)
        config = AgentConfig(state_dir=root / "agent", keypad={"port": port})  # type: ignore[arg-type]
        identity = _state_dir(root / "agent", signing)
        apply_s = asyncio.run(_apply(config, identity, pins, signing))
        (root / "agent.toml").write_text(
            f'state_dir = "{root / "agent"}"\nlog_level = "warning"\n[keypad]\nport = "{port}"\n'
        )
        agent = subprocess.Popen(
            command("kasify-agent", "--config", str(root / "agent.toml"), "run"),
            stderr=subprocess.DEVNULL,
        )
        try:
            controller = Controller(master)
            controller.wait_link()
            rng = random.Random(11)
            samples = []
            for i in range(SAMPLES + WARMUP):
                elapsed = controller.enter(rng.choice(pins))
                if i >= WARMUP:
                    samples.append(elapsed)
        finally:
            agent.terminate()
            agent.wait(10)
            os.close(slave)
            os.close(master)
    floor = _echo_floor(8, SAMPLES)
    ours, base = summary(samples), summary(floor)
    emit(
        {
            "bench": "door_decision",
            "codes": CODES,
            "samples": SAMPLES,
            **ours,
            "floor_pty_echo": base,
            "ratio_p50": round(ours["p50_ms"] / base["p50_ms"], 1),
            "ratio_p99": round(ours["p99_ms"] / base["p99_ms"], 1),
            "apply_10k_codes_s": round(apply_s, 2),
            "target_p99_ms": TARGET_P99_MS,
            "met": ours["p99_ms"] <= TARGET_P99_MS,
        }
    )


if __name__ == "__main__":
    main()
