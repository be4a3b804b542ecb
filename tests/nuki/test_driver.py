"""The agent's driver through bleak over the virtual radio: actions, events, time, every fault."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.locks.base import ActionRefused, LockAction, LockTimeout, NotPaired
from agent.locks.nuki import operations as ops
from agent.locks.nuki.const import Action, LogType, Trigger
from agent.locks.nuki.errors import DecryptionFailed, ReplayedFrame, TruncatedFrame
from agent.locks.nuki.store import NukiStore
from simulator.nuki.peripheral import NukiPeripheral
from simulator.radio import VirtualRadio
from sync_protocol.models import DeliveryState, DoorState, LockState, Method
from tests.nuki.support import NUKI_ID, Agent, add_lock, code, fast_lock, pair, start_agent
from tests.nuki.test_emulator import connected


@pytest.fixture
async def lock(bleak_on_radio: VirtualRadio) -> NukiPeripheral:
    return await add_lock(bleak_on_radio)


@pytest.fixture
async def agent(lock: NukiPeripheral, tmp_path: Path) -> AsyncIterator[Agent]:
    await pair(lock, NukiStore(tmp_path))
    running = await start_agent(tmp_path)
    yield running
    await running.integration.stop()


def lock_actions(lock: NukiPeripheral, action: Action) -> int:
    """How often the lock's log says it ran an action for a Bluetooth client."""
    return sum(
        1
        for entry in lock.lock.world.log
        if entry.type == LogType.LOCK_ACTION
        and (parsed := entry.lock_action()) is not None
        and parsed[0] == action
        and parsed[1] == Trigger.SYSTEM
    )


async def test_actions_report_the_final_state_and_clear_the_beacon_flag(
    lock: NukiPeripheral, agent: Agent
) -> None:
    driver = agent.driver
    await agent.wait_for(lambda: driver.status().state == LockState.LOCKED)
    assert driver.status().reachable
    assert (await driver.perform(LockAction.UNLATCH)).state == LockState.UNLOCKED
    assert (await driver.perform(LockAction.LOCK)).state == LockState.LOCKED
    outcome = await driver.perform(LockAction.LOCK)
    assert outcome.detail == "already in that state"
    async with asyncio.timeout(5):
        await driver.wait_idle()
    assert not lock.lock.world.state_changed  # read once more as a bridge before going idle
    status = driver.status()
    assert (status.state, status.door, status.battery_percent) == (
        LockState.LOCKED, DoorState.CLOSED, 90,
    )  # fmt: skip
    assert lock_actions(lock, Action.UNLATCH) == 1
    [device] = agent.integration.inventory().nuki
    assert (device.nuki_id, device.paired, device.rssi) == (NUKI_ID, True, -50)


async def test_state_follows_the_beacon_flag_without_polling(
    lock: NukiPeripheral, agent: Agent
) -> None:
    driver = agent.driver
    await agent.wait_for(lambda: driver.status().state == LockState.LOCKED)
    await agent.wait_for(lambda: not lock.lock.world.state_changed)
    await agent.wait_for(lambda: lock.connection is None)
    connections = lock.connections
    lock.lock.world.manual(Action.UNLOCK, time.time())
    lock.wake()
    await agent.wait_for(lambda: bool(agent.of_type("unlocked")))
    assert driver.status().state == LockState.UNLOCKED
    assert lock.connections == connections + 1  # one connection, caused by the flag
    [event] = agent.of_type("unlocked")
    assert event.method == Method.MANUAL
    assert event.lock_id == "lock-front"


async def test_keypad_entries_become_events_with_code_and_booking(
    lock: NukiPeripheral, agent: Agent
) -> None:
    now = time.time()
    agent.driver.set_codes(
        [code("c-ada", "345678", start=now - 60, end=now + 3600, label="Ada", booking="b-1")]
    )
    await agent.wait_for(lambda: agent.driver.code_states()["c-ada"].state is DeliveryState.SET)
    world = lock.lock.world
    assert world.keypad_entry("345678", time.time())[0] == "granted"
    lock.wake()
    await agent.wait_for(lambda: bool(agent.of_type("access_granted")))
    assert world.keypad_entry("999999", time.time())[0] == "denied"
    lock.wake()
    await agent.wait_for(lambda: bool(agent.of_type("access_denied")))
    [granted] = agent.of_type("access_granted")
    assert (granted.method, granted.code_id, granted.booking_id) == (
        Method.NUKI_KEYPAD, "c-ada", "b-1",
    )  # fmt: skip
    [denied] = agent.of_type("access_denied")
    assert (denied.method, denied.code_id, denied.result) == (
        Method.NUKI_KEYPAD, None, "invalid_code",
    )  # fmt: skip
    assert agent.driver.status().state == LockState.UNLOCKED


async def test_auto_lock_door_and_battery_events(lock: NukiPeripheral, agent: Agent) -> None:
    world = lock.lock.world
    await agent.wait_for(lambda: agent.driver.status().state == LockState.LOCKED)
    world.manual(Action.LOCK, time.time(), Trigger.AUTO_LOCK)
    world.set_door(True, time.time())
    world.set_battery(8)
    lock.wake()
    await agent.wait_for(
        lambda: bool(agent.of_type("battery_low") and agent.of_type("door_opened"))
    )
    await agent.wait_for(lambda: bool(agent.of_type("locked")))
    assert agent.of_type("locked")[0].method == Method.AUTO
    assert agent.driver.status().battery_critical is True
    assert agent.driver.status().door == DoorState.OPEN


async def test_time_sync_every_interval_and_only_on_a_trusted_clock(
    lock: NukiPeripheral, agent: Agent
) -> None:
    world = lock.lock.world
    await agent.wait_for(lambda: agent.driver.status().state == LockState.LOCKED)
    agent.wall.synced = False  # e.g. a Pi booted without network: not trusted
    agent.wall.offset = 13 * 3600
    agent.driver.kick()
    await agent.wait_for(lambda: lock.connection is None)
    assert abs(world.lock_time(time.time()).timestamp() - time.time()) < 60  # untouched
    agent.wall.synced = True
    agent.driver.kick()
    later = time.time() + 12 * 3600
    await agent.wait_for(lambda: agent.store.lock_state(NUKI_ID)["last_time_sync"] > later)
    assert world.lock_time(time.time()).timestamp() > later  # the lock took the agent's time


async def test_the_locks_clock_lifts_a_pi_that_booted_into_the_past(
    lock: NukiPeripheral, agent: Agent
) -> None:
    await agent.wait_for(lambda: agent.driver.status().state == LockState.LOCKED)
    agent.store.update_lock_state(NUKI_ID, last_time_sync=time.time() - 86_400)
    agent.wall.synced = False  # a power cut, no network, and fake-hwclock three weeks behind
    agent.wall.offset = -21 * 86_400
    clock = agent.driver.ctx.clock
    assert clock.now() < time.time() - 20 * 86_400
    world = lock.lock.world
    world.manual(Action.UNLOCK, time.time(), Trigger.MANUAL)  # someone turns the knob...
    lock.wake()  # ...the beacon flags it, and the Keyturner States carry the lock's own time
    await agent.wait_for(lambda: clock.now() > time.time() - 2 * 3600)
    assert not clock.trusted  # a floor, not a confirmation: reported as untrusted


async def test_a_lock_not_paired_is_unreachable_names_the_pair_command_and_fails_codes(
    lock: NukiPeripheral, tmp_path: Path
) -> None:
    running = await start_agent(tmp_path)
    try:
        driver = running.driver
        driver.set_codes([code("c1", "345678")])
        assert driver.status().reachable is False
        assert driver.code_states()["c1"].error == "not paired"
        with pytest.raises(NotPaired, match=f"kasify-agent nuki pair {NUKI_ID}"):
            await driver.perform(LockAction.UNLOCK)
        await pair(lock, running.store)  # paired by `kasify-agent nuki pair` meanwhile
        driver.kick()
        await running.wait_for(lambda: driver.code_states()["c1"].state is DeliveryState.SET)
        assert driver.status().reachable
    finally:
        await running.integration.stop()


# --- faults --------------------------------------------------------------------------------------


async def test_busy_is_backed_off_and_retried(lock: NukiPeripheral, agent: Agent) -> None:
    lock.lock.faults.busy = 2
    assert (await agent.driver.perform(LockAction.UNLOCK)).state == LockState.UNLOCKED
    lock.lock.faults.busy = 50
    with pytest.raises(ActionRefused) as refused:
        await agent.driver.perform(LockAction.LOCK)
    assert refused.value.code == "busy"


async def test_motor_blocked_is_refused_and_reported_jammed(
    lock: NukiPeripheral, agent: Agent
) -> None:
    lock.lock.faults.motor_blocked = 1
    with pytest.raises(ActionRefused) as refused:
        await agent.driver.perform(LockAction.UNLOCK)
    assert refused.value.code == "motor_blocked"
    assert agent.driver.status().state == LockState.JAMMED
    assert len(agent.of_type("lock_jammed")) == 1
    assert lock_actions(lock, Action.UNLOCK) == 1  # tried once, never repeated


async def test_link_dropped_after_accepted_never_unlatches_twice(
    lock: NukiPeripheral, agent: Agent
) -> None:
    lock.lock.faults.drop_after_accept = 1
    outcome = await agent.driver.perform(LockAction.UNLATCH)
    assert "confirmed from the lock's state" in outcome.detail
    assert outcome.state in (LockState.UNLATCHED, LockState.UNLOCKED)
    await agent.wait_for(lambda: lock.lock.world.motion is None)  # the latch is released again
    assert lock_actions(lock, Action.UNLATCH) == 1


async def test_link_dropped_as_the_command_arrives(lock: NukiPeripheral, agent: Agent) -> None:
    lock.lock.faults.drop_on_command = 1
    outcome = await agent.driver.perform(LockAction.UNLOCK)  # not taken: safe to send again
    assert outcome.state == LockState.UNLOCKED
    assert outcome.detail == "sent again after a link loss"
    assert lock_actions(lock, Action.UNLOCK) == 1
    lock.lock.faults.drop_on_command = 1
    with pytest.raises(LockTimeout, match="not resent"):
        await agent.driver.perform(LockAction.UNLATCH)  # an unlatch is never guessed at
    assert lock_actions(lock, Action.UNLATCH) == 0


async def test_silence_delay_and_a_dropped_idle_link_are_recovered(
    lock: NukiPeripheral, agent: Agent
) -> None:
    await agent.wait_for(lambda: agent.driver.status().state == LockState.LOCKED)
    lock.lock.faults.silence = 1  # the challenge request gets no answer
    assert (await agent.driver.perform(LockAction.UNLOCK)).state == LockState.UNLOCKED
    lock.faults.delay_s = 0.1
    assert (await agent.driver.perform(LockAction.LOCK)).state == LockState.LOCKED
    lock.faults.delay_s = 0.0
    await lock.disconnect("test")
    assert (await agent.driver.perform(LockAction.UNLOCK)).state == LockState.UNLOCKED


async def test_corrupted_truncated_and_replayed_frames_are_named_and_the_link_recovers(
    lock: NukiPeripheral, tmp_path: Path, bleak_on_radio: VirtualRadio
) -> None:
    store = NukiStore(tmp_path)
    await pair(lock, store)
    client = await connected(store)
    try:
        lock.faults.corrupt = 1
        with pytest.raises(DecryptionFailed):
            await client.run(ops.keyturner_states())
        lock.faults.truncate = 1
        with pytest.raises(TruncatedFrame):
            await client.run(ops.keyturner_states())
        lock.faults.replay = 1
        await client.keyturner_states()
        with pytest.raises(ReplayedFrame):
            await client.link.receive(1.0)  # the duplicate arrives right after the answer
        lock.faults.corrupt = 1
        states = await client.keyturner_states()  # the policy asks again once: recovered
        assert client.link.connected
        assert states.lock_state.known
    finally:
        await client.close()


async def test_a_rejected_pin_is_never_tried_again(lock: NukiPeripheral, agent: Agent) -> None:
    lock.lock.world.security_pin = 1111  # someone changed it in the Nuki app
    agent.driver.set_codes([code("c1", "345678")])
    await agent.wait_for(lambda: agent.driver.code_states()["c1"].state is DeliveryState.FAILED)
    assert "security PIN rejected" in (agent.driver.code_states()["c1"].error or "")
    creds = agent.store.credentials(NUKI_ID)
    assert creds is not None
    assert creds.pin_rejected
    agent.driver.set_codes([code("c1", "345678"), code("c2", "456789")])
    await agent.wait_for(lambda: "c2" in agent.driver.code_states())
    await agent.wait_for(lambda: agent.driver.code_states()["c2"].state is DeliveryState.FAILED)
    assert lock.lock.pin_failures == 1  # one wrong attempt, never a second one


async def test_idle_links_are_closed_by_the_agent(lock: NukiPeripheral, tmp_path: Path) -> None:
    await pair(lock, NukiStore(tmp_path))
    running = await start_agent(tmp_path)
    try:
        await running.driver.perform(LockAction.UNLOCK)
        await running.wait_for(lambda: lock.connection is None)  # linger 0.2 s, lock idles 30 s
    finally:
        await running.integration.stop()
    assert fast_lock().idle_timeout_s > 1
