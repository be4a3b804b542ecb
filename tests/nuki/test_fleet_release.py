"""A Nuki lock leaving the desired state has its keypad codes deleted before its driver goes,
so a code of a property the lock no longer belongs to never keeps opening it."""

from __future__ import annotations

import time
from pathlib import Path

from agent.fleet import LockFleet
from agent.locks.nuki.store import NukiStore
from agent.store import StoredLock
from simulator.nuki.peripheral import NukiPeripheral
from simulator.radio import VirtualRadio
from sync_protocol.models import DeliveryState, LockKind
from tests.nuki.support import NUKI_ID, add_lock, code, fast_lock, pair, start_agent

LOCK = StoredLock(id="lock-front", kind="nuki", ref=NUKI_ID, name="Front door", settings={})


async def test_a_removed_lock_loses_its_codes_then_its_driver(
    bleak_on_radio: VirtualRadio, tmp_path: Path
) -> None:
    lock: NukiPeripheral = await add_lock(bleak_on_radio, fast_lock())
    await pair(lock, NukiStore(tmp_path))
    agent = await start_agent(tmp_path)  # the integration, as the daemon builds it
    fleet = LockFleet({LockKind.NUKI: agent.integration})
    await fleet.start()
    try:
        await fleet.sync([LOCK])
        now = time.time()
        fleet.set_codes({LOCK.id: [code("c-ada", "345678", start=now - 60, end=now + 86_400)]})
        world = lock.lock.world
        await agent.wait_for(lambda: len(world.codes) == 1, within_s=15)
        assert world.keypad_entry("345678", time.time())[0] == "granted"

        await fleet.sync([])  # the host removed the lock from the property
        assert fleet.driver(LOCK.id) is None  # gone from reports at once...
        await agent.wait_for(lambda: not world.codes, within_s=15)  # ...its codes soon after
        assert world.keypad_entry("345678", time.time())[0] == "denied"
        await agent.wait_for(lambda: not fleet.draining(), within_s=5)  # then the driver went
    finally:
        await fleet.stop()


async def test_a_lock_back_before_its_codes_were_deleted_keeps_working(
    bleak_on_radio: VirtualRadio, tmp_path: Path
) -> None:
    lock: NukiPeripheral = await add_lock(bleak_on_radio, fast_lock())
    await pair(lock, NukiStore(tmp_path))
    agent = await start_agent(tmp_path)
    fleet = LockFleet({LockKind.NUKI: agent.integration})
    await fleet.start()
    try:
        await fleet.sync([LOCK])
        now = time.time()
        wanted = {LOCK.id: [code("c-ada", "345678", start=now - 60, end=now + 86_400)]}
        fleet.set_codes(wanted)
        world = lock.lock.world
        await agent.wait_for(lambda: len(world.codes) == 1, within_s=15)
        await fleet.sync([])
        await fleet.sync([LOCK])  # re-added at once: the same driver carries on, code and all
        fleet.set_codes(wanted)
        driver = fleet.driver(LOCK.id)
        assert driver is not None
        await agent.wait_for(
            lambda: (
                driver.code_states().get("c-ada") is not None
                and driver.code_states()["c-ada"].state is DeliveryState.SET
            ),
            within_s=15,
        )
        assert [c.code for c in world.codes.values()] == [345678]
        assert not fleet.draining()
    finally:
        await fleet.stop()
