"""The integration against the emulator: doors, codes at the readers, events, link failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.fleet import LockFleet
from agent.locks.base import ActionUnsupported, LockAction, NotPaired
from agent.locks.unifi.events import stable_event_id
from agent.locks.unifi.integration import UnifiIntegration
from agent.locks.unifi.models import parse_log_entry
from agent.locks.unifi.reconnect import LinkState
from agent.locks.unifi.trust import TrustRecord
from agent.store import StoredLock
from simulator.unifi import UnifiEmulator
from sync_protocol.models import DeliveryState, DoorState, EventType, LockKind, LockState, Method
from tests.unifi.support import Recorder, code, integration, wait_for


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def unifi(
    state_dir: Path, emulator: UnifiEmulator, trusted: TrustRecord, recorder: Recorder
) -> AsyncIterator[UnifiIntegration]:
    running = integration(state_dir, emulator.token, recorder)
    await running.start()
    yield running
    await running.stop()


def door_ids(emulator: UnifiEmulator) -> list[str]:
    return list(emulator.controller.doors)


def all_set(unifi: UnifiIntegration, *lock_ids: str) -> bool:
    states = [s for lock in lock_ids for s in unifi.code_states(lock).values()]
    return bool(states) and all(s.state is DeliveryState.SET for s in states)


async def test_doors_live_state_and_inventory(
    emulator: UnifiEmulator, state_dir: Path, trusted: TrustRecord, recorder: Recorder
) -> None:
    d1, d2, d3 = emulator.controller.doors.values()
    d2.position = None  # no sensor: "" on REST
    d3.position, d3.omit_position = None, True  # no sensor, field left out entirely
    unifi = integration(state_dir, emulator.token, recorder)
    await unifi.start()
    try:
        front = unifi.driver("lock-front", d1.id, {})
        side = unifi.driver("lock-side", d2.id, {})
        back = unifi.driver("lock-back", d3.id, {})
        assert unifi.driver("lock-front", d1.id, {}) is front
        await wait_for(lambda: front.status().reachable, "the door to be reachable")
        status = front.status()
        assert (status.state, status.door) == (LockState.LOCKED, DoorState.CLOSED)
        assert status.last_seen is not None
        assert side.status().door is DoorState.NO_SENSOR
        assert back.status().door is DoorState.NO_SENSOR
        inventory = unifi.inventory().unifi
        assert {(d.door_id, d.floor_id, d.name) for d in inventory} == {
            (d.id, emulator.controller.floor_id, d.name) for d in (d1, d2, d3)
        }
        emulator.controller.remote_unlock(d1.id, "", "Admin")  # from the UniFi console
        await wait_for(lambda: front.status().door is DoorState.OPEN, "the door to open")
        assert front.status().state is LockState.UNLOCKED
        await wait_for(lambda: front.status().state is LockState.LOCKED, "the relay to lock")
        await wait_for(lambda: front.status().door is DoorState.CLOSED, "the door to close")
        (event,) = recorder.of(EventType.UNLOCKED)
        assert (event.lock_id, event.method, event.details["actor"]) == (
            "lock-front",
            Method.REMOTE,
            "Admin",
        )
    finally:
        await unifi.stop()


async def test_codes_become_visitors_and_pins_at_readers_become_events(
    unifi: UnifiIntegration, emulator: UnifiEmulator, recorder: Recorder
) -> None:
    d1, d2, d3 = door_ids(emulator)
    front = unifi.driver("lock-front", d1, {})
    side = unifi.driver("lock-side", d2, {})
    both = code("c-both", "135790", label="Ada Lovelace", booking_id="b-ada")
    only = code("c-front", "246802", label="Grace", booking_id="b-grace")
    front.set_codes([both, only])
    side.set_codes([both])
    await wait_for(lambda: all_set(unifi, "lock-front", "lock-side"), "codes to be set")
    assert set(front.code_states()) == {"c-both", "c-front"}
    assert set(side.code_states()) == {"c-both"}
    visitors = {v.pin: v for v in emulator.controller.visitors.values()}
    assert sorted(r["id"] for r in visitors["135790"].resources) == sorted([d1, d2])
    assert (visitors["246802"].first_name, visitors["246802"].last_name) == ("Grace", "(guest)")

    granted = emulator.controller.type_pin(d2, "135790")
    assert granted["result"] == "granted"
    await wait_for(lambda: len(recorder.of(EventType.ACCESS_GRANTED)) == 1, "the entry event")
    (event,) = recorder.of(EventType.ACCESS_GRANTED)
    assert (event.lock_id, event.code_id, event.booking_id) == ("lock-side", "c-both", "b-ada")
    assert (event.method, event.result) == (Method.UNIFI_PIN, "granted")
    assert event.details["unifi_log_id"] == granted["log_id"]
    hit = next(h for h in emulator.controller.logs if h["_id"] == granted["log_id"])
    entry = parse_log_entry(hit)
    assert entry is not None
    assert event.id == stable_event_id(emulator.fingerprint, entry)
    assert event.occurred_at.timestamp() == pytest.approx(entry.at)

    emulator.controller.type_pin(d2, "246802")  # Grace's code does not open the side door
    emulator.controller.type_pin(d1, "000000")  # nobody's PIN
    emulator.controller.type_pin(d3, "135790")  # a door we do not drive: no event
    await wait_for(lambda: len(recorder.of(EventType.ACCESS_DENIED)) == 2, "two denials")
    denied_grace, denied_unknown = recorder.of(EventType.ACCESS_DENIED)
    assert (denied_grace.lock_id, denied_grace.code_id) == ("lock-side", "c-front")
    assert (denied_unknown.lock_id, denied_unknown.code_id) == ("lock-front", None)
    assert all(e.lock_id != "lock-other" for e in recorder.events)

    front.set_codes([both])  # Grace's booking cancelled
    await wait_for(lambda: len(emulator.controller.visitors) == 1, "the visitor to go")
    assert "c-front" not in front.code_states()


async def test_a_pin_typed_while_the_websocket_is_down_still_arrives_once(
    unifi: UnifiIntegration, emulator: UnifiEmulator, recorder: Recorder
) -> None:
    d1 = door_ids(emulator)[0]
    front = unifi.driver("lock-front", d1, {})
    front.set_codes([code("c1", "112233", booking_id="b1")])
    await wait_for(lambda: all_set(unifi, "lock-front"), "the code to be set")
    connects = emulator.app.websocket_connects

    emulator.app.faults.ws_refuse = True
    emulator.app.drop_websockets()
    await wait_for(lambda: not unifi.online, "the link to be seen down")
    entry = emulator.controller.type_pin(d1, "112233")
    emulator.app.faults.ws_refuse = False
    await wait_for(lambda: emulator.app.websocket_connects > connects, "a reconnect")
    await wait_for(lambda: unifi.online, "the link to be up")
    await wait_for(lambda: len(recorder.of(EventType.ACCESS_GRANTED)) == 1, "the entry event")

    connects = emulator.app.websocket_connects
    emulator.app.drop_websockets()  # the catch-up after this reconnect reads the entry again
    await wait_for(lambda: emulator.app.websocket_connects > connects, "another reconnect")
    await wait_for(lambda: unifi.online, "the link to be up again")
    live = emulator.controller.type_pin(d1, "112233")  # and one seen live, for comparison
    await wait_for(lambda: len(recorder.of(EventType.ACCESS_GRANTED)) == 2, "the live event")
    ids = [e.details["unifi_log_id"] for e in recorder.of(EventType.ACCESS_GRANTED)]
    assert ids == [entry["log_id"], live["log_id"]]
    assert len({e.id for e in recorder.events}) == len(recorder.events)


async def test_a_restart_does_not_repeat_events(
    emulator: UnifiEmulator, state_dir: Path, trusted: TrustRecord
) -> None:
    d1 = door_ids(emulator)[0]
    first_run = Recorder()
    unifi = integration(state_dir, emulator.token, first_run)
    await unifi.start()
    unifi.driver("lock-front", d1, {}).set_codes([code("c1", "445566")])
    await wait_for(lambda: all_set(unifi, "lock-front"), "the code to be set")
    emulator.controller.type_pin(d1, "445566")
    await wait_for(lambda: len(first_run.events) == 1, "the entry event")
    await unifi.stop()

    emulator.controller.type_pin(d1, "445566")  # while the agent is stopped
    second_run = Recorder()
    again = integration(state_dir, emulator.token, second_run)
    again.driver("lock-front", d1, {}).set_codes([code("c1", "445566")])
    await again.start()
    try:
        await wait_for(lambda: len(second_run.events) == 1, "the entry made while stopped")
        await wait_for(lambda: all_set(again, "lock-front"), "the code to be set")
        assert second_run.events[0].id != first_run.events[0].id
        assert len(emulator.controller.visitors) == 1  # adopted from the state, not recreated
    finally:
        await again.stop()


async def test_hub_ids_in_log_entries_are_placed(
    unifi: UnifiIntegration, emulator: UnifiEmulator, recorder: Recorder
) -> None:
    d1, d2, _ = door_ids(emulator)
    unifi.driver("lock-front", d1, {}).set_codes([])
    side = unifi.driver("lock-side", d2, {})
    side.set_codes([code("c1", "778899")])
    await wait_for(lambda: all_set(unifi, "lock-side"), "the code to be set")
    emulator.controller.hub_ids_in_logs = True
    hit = emulator.controller.type_pin(d2, "778899")
    await wait_for(lambda: len(recorder.events) == 1, "the entry event")
    assert hit["door_id"] == d2
    assert (recorder.events[0].lock_id, recorder.events[0].code_id) == ("lock-side", "c1")


async def test_remote_actions(
    unifi: UnifiIntegration, emulator: UnifiEmulator, recorder: Recorder
) -> None:
    d1, d2, d3 = emulator.controller.doors.values()
    d2.lock_rules = False
    d3.is_bind_hub = False
    front = unifi.driver("lock-front", d1.id, {})
    side = unifi.driver("lock-side", d2.id, {})
    back = unifi.driver("lock-back", d3.id, {})
    await wait_for(lambda: unifi.online, "the link")

    outcome = await front.perform(LockAction.UNLOCK)
    assert outcome.state is LockState.UNLOCKED
    await wait_for(lambda: len(emulator.controller.logs) == 1, "the controller's log entry")
    outcome = await front.perform(LockAction.LOCK)
    assert (outcome.state, d1.relay, d1.rule) == (LockState.LOCKED, "lock", "")
    keeper = unifi.driver("lock-front", d1.id, {"lock_rule": "keep_lock"})
    await keeper.perform(LockAction.LOCK)
    assert d1.rule == "keep_lock"
    await side.perform(LockAction.UNLATCH)  # momentary, like unlock
    with pytest.raises(ActionUnsupported, match="no lock rules"):
        await side.perform(LockAction.LOCK)
    with pytest.raises(ActionUnsupported, match="no hub bound"):
        await back.perform(LockAction.UNLOCK)
    emulator.controller.type_pin(d1.id, "000000")  # a later entry, to know the logs were read
    await wait_for(lambda: len(recorder.of(EventType.ACCESS_DENIED)) == 1, "the denial")
    assert recorder.of(EventType.UNLOCKED) == []  # our own unlocks are not reported as foreign


async def test_not_trusted_yet_then_trusted_while_running(
    emulator: UnifiEmulator, state_dir: Path, recorder: Recorder
) -> None:
    unifi = integration(state_dir, emulator.token, recorder)
    front = unifi.driver("lock-front", door_ids(emulator)[0], {})
    front.set_codes([code("c1", "556677")])
    await unifi.start()
    try:
        await wait_for(lambda: unifi.policy.state is LinkState.NEEDS_USER, "the verdict")
        assert not front.status().reachable
        assert front.problem is not None
        assert "kasify-agent unifi trust" in front.problem
        state = front.code_states()["c1"]
        assert state.state is DeliveryState.FAILED
        assert state.error is not None
        assert "kasify-agent unifi trust" in state.error
        with pytest.raises(NotPaired, match="kasify-agent unifi trust"):
            await front.perform(LockAction.UNLOCK)
        TrustRecord(emulator.url, emulator.fingerprint).save(state_dir)  # `unifi trust` ran
        await wait_for(lambda: all_set(unifi, "lock-front"), "the code once trusted")
        assert front.status().reachable
    finally:
        await unifi.stop()


async def test_a_wrong_token_is_reported_on_every_code(
    emulator: UnifiEmulator, state_dir: Path, trusted: TrustRecord, recorder: Recorder
) -> None:
    unifi = integration(state_dir, "token-of-unifi-protect", recorder)
    front = unifi.driver("lock-front", door_ids(emulator)[0], {})
    front.set_codes([code("c1", "556677")])
    await unifi.start()
    try:
        await wait_for(lambda: unifi.policy.state is LinkState.NEEDS_USER, "the verdict")
        state = front.code_states()["c1"]
        assert state.state is DeliveryState.FAILED
        assert state.error is not None
        assert "UniFi Access API token" in state.error
        with pytest.raises(NotPaired, match="UniFi Access API token"):
            await front.perform(LockAction.UNLOCK)
    finally:
        await unifi.stop()


async def test_a_token_that_expires_while_running(
    unifi: UnifiIntegration, emulator: UnifiEmulator
) -> None:
    front = unifi.driver("lock-front", door_ids(emulator)[0], {})
    first, second = code("c1", "665544"), code("c2", "665545")
    front.set_codes([first])
    await wait_for(lambda: all_set(unifi, "lock-front"), "the code to be set")
    emulator.controller.tokens[emulator.token].expired = True
    front.set_codes([first, second])
    await wait_for(lambda: front.code_states()["c2"].state is DeliveryState.FAILED, "the refusal")
    assert "expired" in (front.code_states()["c2"].error or "")
    assert front.code_states()["c1"].state is DeliveryState.SET  # still on the controller
    with pytest.raises(NotPaired, match="expired"):
        await front.perform(LockAction.UNLOCK)


async def test_a_silent_link_is_replaced(unifi: UnifiIntegration, emulator: UnifiEmulator) -> None:
    await wait_for(lambda: unifi.online, "the link")
    connects = emulator.app.websocket_connects
    emulator.app.faults.ws_silent = True  # open, but not even "Hello" any more
    await wait_for(lambda: not unifi.online, "the watchdog")
    emulator.app.faults.ws_silent = False
    await wait_for(lambda: unifi.online and emulator.app.websocket_connects > connects, "relink")


async def test_no_pass_before_every_door_has_its_codes(
    emulator: UnifiEmulator, state_dir: Path, trusted: TrustRecord, recorder: Recorder
) -> None:
    d1, d2, _ = door_ids(emulator)
    front_code, side_code = code("c1", "101010"), code("c2", "202020")
    first = integration(state_dir, emulator.token, recorder)
    first.driver("lock-front", d1, {}).set_codes([front_code])
    first.driver("lock-side", d2, {}).set_codes([side_code])
    await first.start()
    await wait_for(lambda: all_set(first, "lock-front", "lock-side"), "both codes")
    await first.stop()
    visitors = set(emulator.controller.visitors)

    restarted = integration(state_dir, emulator.token, recorder)
    restarted.driver("lock-front", d1, {}).set_codes([front_code])
    side = restarted.driver("lock-side", d2, {})  # its codes are not known yet
    await restarted.start()
    try:
        await wait_for(lambda: restarted.online, "the link")
        await restarted.reconcile_now()  # refused: it would take c2 for revoked
        assert set(emulator.controller.visitors) == visitors
        side.set_codes([side_code])
        await wait_for(lambda: all_set(restarted, "lock-front", "lock-side"), "both codes")
        assert set(emulator.controller.visitors) == visitors
    finally:
        await restarted.stop()


async def test_a_door_leaving_the_property_takes_its_pins_off_the_readers(
    unifi: UnifiIntegration, emulator: UnifiEmulator
) -> None:
    d1, d2, _ = door_ids(emulator)
    fleet = LockFleet({LockKind.UNIFI: unifi})
    await fleet.start()
    front = StoredLock(id="lock-front", kind="unifi", ref=d1, name="Front", settings={})
    side = StoredLock(id="lock-side", kind="unifi", ref=d2, name="Side", settings={})
    both = code("c-both", "135790")
    await fleet.sync([front, side])
    fleet.set_codes({"lock-front": [both], "lock-side": [both]})
    await wait_for(lambda: all_set(unifi, "lock-front", "lock-side"), "codes to be set")
    assert emulator.controller.type_pin(d1, "135790")["result"] == "granted"

    await fleet.sync([side])  # the front door was removed from the property
    await wait_for(lambda: not fleet.draining(), "the front door's codes to be deleted")
    assert emulator.controller.type_pin(d1, "135790")["result"] != "granted"
    assert emulator.controller.type_pin(d2, "135790")["result"] == "granted"
    [visitor] = emulator.controller.visitors.values()
    assert [r["id"] for r in visitor.resources] == [d2]
    await fleet.stop()
