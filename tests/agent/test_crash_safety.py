"""SIGKILL the agent process at random moments while it applies codes and writes events.

After every kill: the database passes `PRAGMA integrity_check`, the applied version and its codes
are exactly one published document (never half of one), and no event the agent had reported
durable is missing (it is either still in the outbox or was received by the cloud side).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from agent.store import Store
from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker
from simulator.keypad import KeypadEmulator
from sync_protocol.codec import decode_desired
from tests.agent.support import (
    Collector,
    code,
    desired,
    enrolled_state_dir,
    eventually,
    signed,
)

pytestmark = pytest.mark.slow

KILLS = 100
CODES_PER_VERSION = 300  # enough that applying one takes a while, so kills land mid-apply
STABLE_PIN = "345678"  # present in every version, so typed entries keep being granted
DURABLE = re.compile(r"durable event ([0-9a-f-]{36}) ")
KEY = SigningKey.generate()


def _run_agent(config_path: str, log_path: str) -> None:
    """Child process: the real `kasify-agent run`, logging to a file."""
    from agent.cli import main

    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os._exit(main(["--config", config_path, "run"]))


def _pins(version: int) -> list[str]:
    rng = random.Random(version)
    pins = {STABLE_PIN}
    while len(pins) < CODES_PER_VERSION:
        pins.add("".join(rng.choice("123456789") for _ in range(6)))
    return sorted(pins)


async def test_sigkill_at_random_moments_loses_nothing_durable(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    state = tmp_path / "state"
    identity = enrolled_state_dir(state, ca, gw, KEY, broker_port=broker.port)
    link = tmp_path / "ttyKEYPAD"
    config_path = tmp_path / "agent.toml"
    config_path.write_text(
        f'state_dir = "{state}"\nlog_level = "debug"\n[clock]\nassume_synchronized = true\n'
        f'[keypad]\nport = "{link}"\n'
    )
    log_path = tmp_path / "agent.log"
    emulator = KeypadEmulator(str(link))
    await emulator.start()
    cloud = await Collector.start(broker, tmp_path / "certs", gw, KEY)
    published: dict[int, tuple[set[str], str]] = {}  # version -> (code ids, digest)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["agent.cli", "agent.daemon"])
    rng = random.Random(2026)
    warm_up = ctx.Process(target=os.getpid)  # start the forkserver now, so kills land in work
    warm_up.start()
    await asyncio.to_thread(warm_up.join)

    async def publish(version: int) -> None:
        codes = tuple(
            code(identity, f"v{version}-{i}" if pin != STABLE_PIN else f"v{version}-s", pin)
            for i, pin in enumerate(_pins(version))
        )
        data = signed(desired(identity, version, codes), KEY)
        digest = decode_desired(
            data, identity.verify_keys, gateway_id=gw, applied_version=0, applied_digest=None
        ).digest
        published[version] = ({c.id for c in codes}, digest)
        await cloud.publish_desired(gw, data)

    async def type_codes(stop: asyncio.Event) -> None:
        while not stop.is_set():
            emulator.press((STABLE_PIN if rng.random() < 0.8 else "987654") + "#")
            await asyncio.sleep(0.03)

    version = 0
    try:
        for _ in range(KILLS):
            version += 1
            await publish(version)
            child = ctx.Process(target=_run_agent, args=(str(config_path), str(log_path)))
            child.start()
            stop = asyncio.Event()
            typing = asyncio.create_task(type_codes(stop))
            await asyncio.sleep(rng.uniform(0.05, 0.8))
            os.kill(child.pid or 0, signal.SIGKILL)
            await asyncio.to_thread(child.join)
            stop.set()
            await typing
            await _check(state, published, cloud, gw, log_path)

        # A last, clean run drains everything that was durable.
        child = ctx.Process(target=_run_agent, args=(str(config_path), str(log_path)))
        child.start()
        durable = _durable(log_path)
        received = {e.id for e in cloud.events(gw)}
        await eventually(lambda: durable <= {e.id for e in cloud.events(gw)}, 60)
        assert len(durable) > KILLS  # the test did write events under fire
        assert received  # and some were delivered during the runs
        child.terminate()
        await asyncio.to_thread(child.join)
    finally:
        await cloud.close()
        await emulator.stop()


def _durable(log_path: Path) -> set[str]:
    """Event ids the agent logged as durable; none when it was killed before it could log."""
    if not log_path.exists():
        return set()
    return set(DURABLE.findall(log_path.read_text(errors="replace")))


async def _check(
    state: Path,
    published: dict[int, tuple[set[str], str]],
    cloud: Collector,
    gw: str,
    log_path: Path,
) -> None:
    store = Store(state / "agent.db")
    try:
        assert store.integrity_check() == "ok"
        applied = store.applied()
        stored_codes = {c.id for c in store.codes()}
        if applied.version == 0:
            assert stored_codes == set()
        else:
            ids, digest = published[applied.version]
            assert stored_codes == ids, f"version {applied.version} half applied"
            assert applied.digest == digest
        queued = {row.event_id for row in store.outbox.rows(1_000_000)}
    finally:
        store.close()
    durable = _durable(log_path) - queued
    # Events deleted after the broker's PUBACK reach the cloud side a moment later.
    with contextlib.suppress(AssertionError):
        await eventually(lambda: durable <= {e.id for e in cloud.events(gw)}, 3)
    lost = durable - {e.id for e in cloud.events(gw)}
    assert not lost, f"durable events lost: {sorted(lost)[:5]}"


@pytest.fixture(autouse=True)
def _no_stray_children() -> Iterator[None]:
    """Forkserver children must not outlive the test."""
    yield
    for child in multiprocessing.active_children():
        with contextlib.suppress(ProcessLookupError):
            child.kill()
