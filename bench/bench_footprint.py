"""Footprint of the agent on a Pi: memory, CPU and bytes written to the SD card.

The agent runs as its own process with 1,000 cached codes, connected to a real Mosquitto and to the
emulated keypad controller. Phase 1 (idle, 10 minutes by default): RSS, CPU share of one core, and
bytes the process caused to be written to storage (/proc/PID/io write_bytes), extrapolated to an
hour. Phase 2 (busy): one code typed every two seconds; bytes written per hour again. The floor is
the same Python interpreter idling (asyncio loop, nothing else) over the same time.

Durations: KASIFY_BENCH_IDLE_S (default 600) and KASIFY_BENCH_BUSY_S (default 120).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emit
from nacl.signing import SigningKey

from agent.config import AgentConfig
from agent.daemon import Agent
from cloud_api.pki import CertificateAuthority
from simulator.broker import start_broker
from simulator.keypad import KeypadControl
from simulator.stack import command
from tests.agent.support import code, desired, enrolled_state_dir, signed

CODES = 1000
IDLE_S = float(os.environ.get("KASIFY_BENCH_IDLE_S", "600"))
BUSY_S = float(os.environ.get("KASIFY_BENCH_BUSY_S", "120"))
TYPE_EVERY_S = 2.0
TARGET_RSS_MB = 60.0
TARGET_CPU_PCT = 1.0
TICK = os.sysconf("SC_CLK_TCK")


def _proc(pid: int) -> tuple[float, float, int]:
    """(RSS MiB, CPU seconds, bytes written to storage) of a process."""
    with open(f"/proc/{pid}/status") as fh:
        rss_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    with open(f"/proc/{pid}/io") as fh:
        written = next(int(line.split()[1]) for line in fh if line.startswith("write_bytes:"))
    return rss_kb / 1024, cpu, written


def _measure(pid: int, seconds: float) -> dict[str, float]:
    rss0, cpu0, w0 = _proc(pid)
    time.sleep(seconds)
    rss1, cpu1, w1 = _proc(pid)
    return {
        "rss_mb": round(max(rss0, rss1), 1),
        "cpu_pct": round(100 * (cpu1 - cpu0) / seconds, 3),
        "bytes_written_per_hour": round((w1 - w0) * 3600 / seconds),
    }


def main() -> None:
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory(prefix="kasify-bench-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        ca = CertificateAuthority.create("bench")
        broker = start_broker(root / "broker", ca)
        keypad = subprocess.Popen(
            command(
                "kasify-sim",
                "keypad",
                "serve",
                "--link",
                str(root / "tty"),
                "--control",
                str(root / "keypad.sock"),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        state = root / "state"
        identity = enrolled_state_dir(state, ca, "gw-footprint", key, broker_port=broker.port)
        pins = [f"{345678 + i * 7:06d}".replace("0", "9") for i in range(CODES)]
        doc = desired(identity, 1, tuple(code(identity, f"c{i}", p) for i, p in enumerate(pins)))

        async def preload() -> None:
            agent = await Agent.open(AgentConfig(state_dir=state), identity)
            assert await agent.sync.on_desired(signed(doc, key))
            await agent.store.close()

        asyncio.run(preload())
        (root / "agent.toml").write_text(
            f'state_dir = "{state}"\nlog_level = "warning"\n[clock]\nassume_synchronized = true\n'
            f'[keypad]\nport = "{root / "tty"}"\n'
        )
        floor = subprocess.Popen(
            [sys.executable, "-c", "import asyncio\nasyncio.run(asyncio.sleep(1e9))"]
        )
        agent = subprocess.Popen(
            command("kasify-agent", "--config", str(root / "agent.toml"), "run"),
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(10)  # start-up, first connection, keypad hello, first reported state
            idle = _measure(agent.pid, IDLE_S)
            floor_idle = _measure(floor.pid, min(IDLE_S, 60))
            control = KeypadControl(str(root / "keypad.sock"))

            async def type_codes() -> None:
                deadline = time.monotonic() + BUSY_S
                while time.monotonic() < deadline:
                    await control.type_code(pins[int(time.monotonic()) % CODES])
                    await asyncio.sleep(TYPE_EVERY_S)

            rss0, cpu0, w0 = _proc(agent.pid)
            started = time.monotonic()
            asyncio.run(type_codes())
            elapsed = time.monotonic() - started
            rss1, cpu1, w1 = _proc(agent.pid)
        finally:
            agent.terminate()
            agent.wait(10)
            floor.kill()
            keypad.terminate()
            keypad.wait(10)
            broker.stop()
    emit(
        {
            "bench": "agent_footprint",
            "codes": CODES,
            "idle_s": IDLE_S,
            "idle": idle,
            "busy": {
                "entries_per_hour": round(3600 / TYPE_EVERY_S),
                "rss_mb": round(max(rss0, rss1), 1),
                "cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 3),
                "bytes_written_per_hour": round((w1 - w0) * 3600 / elapsed),
            },
            "floor_idle_python": floor_idle,
            "target": {"rss_mb": TARGET_RSS_MB, "cpu_pct": TARGET_CPU_PCT},
            "met": idle["rss_mb"] <= TARGET_RSS_MB and idle["cpu_pct"] <= TARGET_CPU_PCT,
        }
    )


if __name__ == "__main__":
    main()
