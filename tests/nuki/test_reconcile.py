"""Keypad code reconciliation through the driver onto the emulated lock's Nuki Keypad."""

from __future__ import annotations

import json
import random
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.locks.base import CodeState, LockCode
from agent.locks.nuki.keypad_messages import TimeWindow
from agent.locks.nuki.store import NukiStore
from simulator.nuki.model import StoredCode
from simulator.nuki.peripheral import NukiPeripheral
from simulator.radio import VirtualRadio
from sync_protocol.models import DeliveryState
from tests.nuki.support import NUKI_ID, Agent, add_lock, code, fast_lock, pair, start_agent

DIGITS = "123456789"


def pins(count: int) -> list[str]:
    """Distinct PINs that follow the lock's rules."""
    rng = random.Random(42)
    out: list[str] = []
    while len(out) < count:
        candidate = "".join(rng.choice(DIGITS) for _ in range(6))
        if not candidate.startswith("12") and candidate not in out:
            out.append(candidate)
    return out


def settled(agent: Agent, ids: list[str]) -> bool:
    states = agent.driver.code_states()
    return all(
        i in states and states[i].state in (DeliveryState.SET, DeliveryState.FAILED) for i in ids
    )


@pytest.fixture
async def small_lock(bleak_on_radio: VirtualRadio) -> NukiPeripheral:
    return await add_lock(bleak_on_radio, fast_lock(capacity=60))


@pytest.fixture
async def agent(small_lock: NukiPeripheral, tmp_path: Path) -> AsyncIterator[Agent]:
    await pair(small_lock, NukiStore(tmp_path))
    running = await start_agent(tmp_path)
    yield running
    await running.integration.stop()


async def test_100_codes_onto_a_lock_that_holds_60(
    small_lock: NukiPeripheral, agent: Agent
) -> None:
    now = time.time()
    desired = [
        code(f"c{i:03d}", pin, start=now + i * 60, end=now + 86_400 + i * 60, label=f"Guest {i}")
        for i, pin in enumerate(pins(100))
    ]
    agent.driver.set_codes(desired)
    ids = [c.code_id for c in desired]
    await agent.wait_for(lambda: settled(agent, ids), within_s=30)
    states = agent.driver.code_states()
    set_ids = [i for i in ids if states[i].state is DeliveryState.SET]
    failed = {i: states[i].error for i in ids if states[i].state is DeliveryState.FAILED}
    assert set_ids == ids[:60]  # the codes needed first get the room
    assert failed == dict.fromkeys(ids[60:], "lock full")
    world = small_lock.lock.world
    assert len(world.codes) == 60
    by_name = {c.name: c for c in world.codes.values()}
    first = by_name["Guest 0"]
    assert first.window.time_limited
    assert first.window.allowed_until is not None
    assert int(first.window.allowed_until.timestamp()) == int(desired[0].ends_at or 0)


async def test_rules_duplicates_removal_and_the_mapping_file(
    small_lock: NukiPeripheral, agent: Agent, tmp_path: Path
) -> None:
    world = small_lock.lock.world
    host_code = 567891  # a code the host created in the Nuki app
    world.codes[99] = StoredCode(99, host_code, "Host", True, TimeWindow(), None)
    desired = [
        code("ok", "345678", label="Ada"),
        code("zero", "345670"),
        code("twelve", "123456"),
        code("short", "34567"),
        code("dup", str(host_code)),
    ]
    agent.driver.set_codes(desired)
    await agent.wait_for(lambda: settled(agent, [c.code_id for c in desired]))
    states = agent.driver.code_states()
    assert states["ok"].state is DeliveryState.SET
    assert states["zero"].error == "PIN must not contain the digit 0"
    assert states["twelve"].error == 'PIN must not start with "12"'
    assert states["short"].error == "PIN must be exactly 6 digits"
    assert (states["dup"].error or "").startswith("duplicate")

    mapping_file = tmp_path / "nuki" / f"{NUKI_ID}.codes.json"
    assert stat.S_IMODE(mapping_file.stat().st_mode) == 0o600
    text = mapping_file.read_text()
    assert "345678" not in text  # never a PIN in clear on disk
    assert set(json.loads(text)["codes"]) == {"ok"}

    agent.driver.set_codes([])  # the booking ended early: the code must go
    await agent.wait_for(lambda: not agent.driver.code_states())
    assert {c.code for c in world.codes.values()} == {host_code}  # the host's code untouched


async def test_an_expired_code_is_removed_when_its_window_ends(
    small_lock: NukiPeripheral, agent: Agent
) -> None:
    now = time.time()
    agent.driver.set_codes([code("short", "345678", start=now - 60, end=now + 3600)])
    await agent.wait_for(lambda: settled(agent, ["short"]))
    assert len(small_lock.lock.world.codes) == 1
    agent.wall.offset = 3601  # the window ended (the driver wakes for it; tests move the clock)
    agent.driver.kick()
    await agent.wait_for(lambda: not small_lock.lock.world.codes)
    assert agent.driver.code_states()["short"] == CodeState(DeliveryState.UNSET, "expired")


async def test_codes_survive_a_lost_mapping_without_duplicates(
    small_lock: NukiPeripheral, agent: Agent, tmp_path: Path
) -> None:
    desired: list[LockCode] = [code("a", "345678", label="Ada"), code("b", "456789", label="Bo")]
    agent.driver.set_codes(desired)
    await agent.wait_for(lambda: settled(agent, ["a", "b"]))
    await agent.integration.stop()
    (tmp_path / "nuki" / f"{NUKI_ID}.codes.json").unlink()
    again = await start_agent(tmp_path)
    try:
        again.driver.set_codes(desired)
        await again.wait_for(lambda: settled(again, ["a", "b"]))
        assert {s.state for s in again.driver.code_states().values()} == {DeliveryState.SET}
        assert len(small_lock.lock.world.codes) == 2  # adopted, not added twice
    finally:
        await again.integration.stop()


async def test_a_code_cancelled_while_it_is_being_added_is_removed(
    small_lock: NukiPeripheral, agent: Agent
) -> None:
    small_lock.faults.delay_s = 0.2  # a slow link: the add takes several round trips of this
    now = time.time()
    agent.driver.set_codes([code("c-gone", "345678", start=now - 60, end=now + 86_400)])
    world = small_lock.lock.world
    # The lock stored the code; its answer is still on the way when the booking is cancelled.
    await agent.wait_for(lambda: bool(world.codes), within_s=15)
    agent.driver.set_codes([])
    await agent.wait_for(lambda: not world.codes, within_s=15)  # the next pass takes it off
    await agent.wait_for(lambda: not agent.driver.code_states(), within_s=5)
    assert world.keypad_entry("345678", time.time())[0] == "denied"
