"""The keypad door over a real pty with the emulated controller: codes in, relay and events out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.access import AccessState, pin_mac
from agent.clock import Clock
from agent.config import KeypadConfig
from agent.keypad import LOCKOUT_KEY, KeypadDoor
from agent.keypad_lockout import LockoutState
from agent.outbox import Outbox
from agent.store import AsyncStore, Store, StoredCode, StoredLock
from simulator.keypad import KeypadEmulator
from tests.agent.support import eventually

KEY = b"p" * 32


@contextlib.asynccontextmanager
async def door(tmp_path: Path) -> AsyncIterator[tuple[KeypadDoor, KeypadEmulator, AsyncStore]]:
    link = str(tmp_path / "ttyKEYPAD")
    emulator = KeypadEmulator(link)
    await emulator.start()
    store = await AsyncStore.open(tmp_path / "agent.db")
    clock = Clock(synchronized=lambda: True)
    access = AccessState(KEY)
    now = clock.now()
    access.replace(
        [StoredLock("front", "relay", "keypad", "Front", {})],
        [
            StoredCode(
                "c1",
                "guest",
                pin_mac(KEY, "345678"),
                now - 60,
                now + 3600,
                ("front",),
                "booking-1",
                None,
                "",
            ),
            StoredCode(
                "old",
                "guest",
                pin_mac(KEY, "456789"),
                now - 7200,
                now - 3600,
                ("front",),
                "booking-0",
                None,
                "",
            ),
        ],
    )
    keypad = KeypadDoor(
        KeypadConfig(port=link, pulse_ms=1200, relay=0),
        access,
        Outbox(store, clock),
        clock,
        store=store,
    )
    task = asyncio.create_task(keypad.run())
    try:
        await eventually(lambda: keypad.link.connected)
        yield keypad, emulator, store
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await emulator.stop()
        await store.close()


def _events(store: AsyncStore) -> list[dict[str, object]]:
    return [json.loads(row.body) for row in store.sync.outbox.rows(100)]


async def _reaction(emulator: KeypadEmulator, code: str) -> list[dict[str, object]]:
    queue = emulator.subscribe()
    try:
        emulator.press(code + "#")
        effects: list[dict[str, object]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while not any(e["kind"] == "feedback" for e in effects):
                    effects.append(await queue.get())
        await asyncio.sleep(0.05)
        while not queue.empty():
            effects.append(queue.get_nowait())
        return effects
    finally:
        emulator.unsubscribe(queue)


async def test_valid_code_pulses_the_relay_and_is_recorded(tmp_path: Path) -> None:
    async with door(tmp_path) as (_keypad, emulator, store):
        effects = await _reaction(emulator, "345678")
        pulses = [e for e in effects if e["kind"] == "relay_pulse"]
        assert pulses == [pulses[0]]
        assert pulses[0]["relay"] == 0
        assert pulses[0]["duration_ms"] == 1200
        assert [e["outcome"] for e in effects if e["kind"] == "feedback"] == ["granted"]
        await eventually(lambda: any(e["type"] == "access_granted" for e in _events(store)))
        event = next(e for e in _events(store) if e["type"] == "access_granted")
        assert event["code_id"] == "c1"
        assert event["booking_id"] == "booking-1"
        assert event["lock_id"] == "front"
        assert event["method"] == "gateway_keypad"


@pytest.mark.parametrize(("code", "reason"), [("999999", "unknown_code"), ("456789", "expired")])
async def test_refused_code_never_pulses(tmp_path: Path, code: str, reason: str) -> None:
    async with door(tmp_path) as (_keypad, emulator, store):
        effects = await _reaction(emulator, code)
        assert not [e for e in effects if e["kind"] == "relay_pulse"]
        assert [e["outcome"] for e in effects if e["kind"] == "feedback"] == ["denied"]
        await eventually(lambda: any(e["type"] == "access_denied" for e in _events(store)))
        denial = next(e for e in _events(store) if e["type"] == "access_denied")
        assert denial["details"] == {"reason": reason}
        assert denial["result"] == "denied"


async def test_door_contact_tamper_and_garbage_on_the_line(tmp_path: Path) -> None:
    async with door(tmp_path) as (keypad, emulator, store):
        emulator.inject_garbage(500)
        emulator.set_door(True)
        emulator.set_tamper(True)
        await eventually(lambda: {"door_opened", "tamper"} <= {e["type"] for e in _events(store)})
        assert keypad.door_open is True
        effects = await _reaction(emulator, "345678")  # the link still works after the garbage
        assert [e["outcome"] for e in effects if e["kind"] == "feedback"] == ["granted"]
        assert keypad.link.frame_errors > 0


async def test_a_pulse_the_controller_refuses_is_reported_as_an_error(tmp_path: Path) -> None:
    async with door(tmp_path) as (keypad, emulator, store):
        # This controller has one relay; relay 3 is refused (NAK), so the door did not open.
        keypad.config = keypad.config.model_copy(update={"relay": 3})
        effects = await _reaction(emulator, "345678")
        assert not [e for e in effects if e["kind"] == "relay_pulse"]
        assert [e["outcome"] for e in effects if e["kind"] == "feedback"] == ["error"]
        await eventually(lambda: any(e["type"] == "access_granted" for e in _events(store)))
        event = next(e for e in _events(store) if e["type"] == "access_granted")
        assert event["result"] == "error"
        assert "BAD_PAYLOAD" in str(event["details"]["error"])


async def test_five_wrong_codes_lock_the_keypad_and_a_restart_keeps_it_locked(
    tmp_path: Path,
) -> None:
    async with door(tmp_path) as (keypad, emulator, store):
        for i in range(4):
            effects = await _reaction(emulator, f"91919{i}")
            assert [e["outcome"] for e in effects if e["kind"] == "feedback"] == ["denied"]
        effects = await _reaction(emulator, "919194")
        assert [e["outcome"] for e in effects if e["kind"] == "feedback"] == ["locked_out"]
        # Even the right code is refused, unchecked, while the keypad is locked.
        effects = await _reaction(emulator, "345678")
        assert [e["outcome"] for e in effects if e["kind"] == "feedback"] == ["locked_out"]
        assert not [e for e in effects if e["kind"] == "relay_pulse"]
        await eventually(lambda: any(e["type"] == "keypad_lockout" for e in _events(store)))
        lockout = next(e for e in _events(store) if e["type"] == "keypad_lockout")
        assert lockout["details"] == {"duration_s": 30.0, "failures": 5}
        assert keypad.lockout.remaining(keypad.clock.now()) > 25
    # The state survives the restart of the agent.
    stored = Store(tmp_path / "agent.db")
    state = LockoutState.from_json(stored.get(LOCKOUT_KEY))
    stored.close()
    assert state.strikes == 1
    assert state.refused == 1
    assert state.locked_until > time.time() + 25
