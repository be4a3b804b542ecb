"""The whole pairing and every command through the real bleak API, over the virtual radio."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.locks.nuki.channel import EncryptedChannel, Received
from agent.locks.nuki.client import NukiClient
from agent.locks.nuki.const import KEYTURNER_USDIO, Action, ErrorCode, LockState, LogType
from agent.locks.nuki.errors import NukiLockError
from agent.locks.nuki.keypad_messages import TimeWindow
from agent.locks.nuki.store import NukiStore
from simulator.nuki.control import NukiControl, NukiControlServer
from simulator.nuki.emulator import save_state, start_lock
from simulator.radio import VirtualRadio
from tests.nuki.support import FAST, NUKI_ID, PIN, add_lock, fast_lock, find, pair


class RecordingChannel:
    """Counts the size of every indication piece before the real channel decodes it."""

    def __init__(self, inner: EncryptedChannel) -> None:
        self.inner = inner
        self.sizes: list[int] = []

    def feed(self, piece: bytes) -> list[Received]:
        self.sizes.append(len(piece))
        return self.inner.feed(piece)

    def reset(self) -> None:
        self.inner.reset()


async def connected(store: NukiStore) -> NukiClient:
    creds = store.credentials(NUKI_ID)
    assert creds is not None
    device, _ = await find()
    return await NukiClient.connect(device, NUKI_ID, creds, timeouts=FAST)


async def test_pairing_stores_secrets_0600_and_verifies_pin_and_time(
    bleak_on_radio: VirtualRadio, tmp_path: Path
) -> None:
    lock = await add_lock(bleak_on_radio)
    store = NukiStore(tmp_path)
    report = await pair(lock, store)
    assert report["paired"]
    assert report["pin_verified"]
    assert report["time_synced"]
    creds = store.credentials(NUKI_ID)
    assert creds is not None
    assert creds.security_pin == PIN
    [auth] = lock.lock.world.authorizations.values()
    assert (auth.auth_id, auth.shared_key, auth.id_type.name) == (
        creds.auth_id, creds.shared_key, "BRIDGE",
    )  # fmt: skip
    path = tmp_path / "nuki" / f"{NUKI_ID}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "last_time_sync" in store.lock_state(NUKI_ID)


async def test_every_command_over_bleak_with_20_byte_indications(
    bleak_on_radio: VirtualRadio, tmp_path: Path
) -> None:
    lock = await add_lock(bleak_on_radio)
    store = NukiStore(tmp_path)
    await pair(lock, store)
    client = await connected(store)
    assert client._session is not None
    recorder = RecordingChannel(client._session.channel)
    client.link.attach(KEYTURNER_USDIO, recorder)  # type: ignore[arg-type]
    try:
        states = await client.keyturner_states()
        assert states.lock_state == LockState.LOCKED
        battery = await client.battery_report()
        assert battery.battery_voltage_mv > 4000
        config = await client.config()
        assert f"{config.nuki_id:08X}" == NUKI_ID
        await client.verify_pin()
        await client.update_time(datetime.now(UTC) + timedelta(hours=1))

        pushed: list[LockState] = []
        unlatched = await client.lock_action(
            Action.UNLATCH, on_state=lambda s: pushed.append(s.lock_state)
        )
        assert unlatched.accepted
        moves = [s for i, s in enumerate(pushed) if i == 0 or pushed[i - 1] != s]
        assert moves == [LockState.UNLATCHING, LockState.UNLATCHED, LockState.UNLOCKED]
        already = await client.lock_action(Action.UNLOCK)
        assert not already.accepted
        locked = await client.lock_action(Action.LOCK)
        assert locked.states[-1].lock_state == LockState.LOCKED

        window = TimeWindow(
            True, datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 3, tzinfo=UTC)
        )
        keypad_id = await client.add_keypad_code(345678, "Guest Ada", window)
        await client.update_keypad_code(keypad_id, 456789, "Guest Ada", window)
        [listed] = await client.keypad_codes()
        assert (listed.code_id, listed.code, listed.window) == (keypad_id, 456789, window)
        with pytest.raises(NukiLockError) as duplicate:
            await client.add_keypad_code(456789, "again", TimeWindow())
        assert duplicate.value.code == ErrorCode.CODE_ALREADY_EXISTS
        await client.remove_keypad_code(keypad_id)
        assert await client.keypad_codes() == []

        entries = await client.log_entries(10)
        assert entries[0].index > entries[-1].index  # newest first
        actions = [e.lock_action() for e in entries if e.type == LogType.LOCK_ACTION]
        assert [a[0] for a in actions if a] == [Action.LOCK, Action.UNLATCH]
    finally:
        await client.close()
    assert recorder.sizes
    assert max(recorder.sizes) == 20  # the lock never negotiates a larger MTU


async def test_the_lock_drops_an_idle_link(bleak_on_radio: VirtualRadio, tmp_path: Path) -> None:
    lock = await add_lock(bleak_on_radio, fast_lock(idle_timeout_s=0.3))
    store = NukiStore(tmp_path)
    await pair(lock, store)
    client = await connected(store)
    await client.keyturner_states()
    async with asyncio.timeout(3):
        while client.link.connected:  # noqa: ASYNC110 - waiting on the emulator's own timer
            await asyncio.sleep(0.02)
    assert lock.connection is None


async def test_control_socket_drives_the_lock(bleak_on_radio: VirtualRadio, tmp_path: Path) -> None:
    lock = await add_lock(bleak_on_radio)
    server = NukiControlServer(lock, str(tmp_path / "nuki.sock"))
    await server.start()
    control = NukiControl(server.socket_path)
    try:
        await control.pairing(True, 30)
        assert (await control.status())["pairing_mode"] is True
        assert (await control.keypad("345678"))["result"] == "denied"
        await control.command("door", open=True)
        await control.command("battery", percent=12)
        await control.fault("busy", 2)
        status = await control.status()
        assert status["door"] == "opened"
        assert status["battery_critical"] is True
        assert status["faults"]["busy"] == 2
        log = await control.command("log", count=5)
        assert [e["type"] for e in log["entries"]] == ["door_sensor", "keypad_action"]
        with pytest.raises(RuntimeError, match="unknown fault"):
            await control.fault("gremlins")
    finally:
        await server.stop()


async def test_pairings_survive_an_emulator_restart(
    bleak_on_radio: VirtualRadio, tmp_path: Path
) -> None:
    state_file = tmp_path / "lock.json"
    controller, sink = bleak_on_radio.attach("first lock")
    first = await start_lock(fast_lock(state_file=state_file), controller, sink)
    store = NukiStore(tmp_path)
    await pair(first, store)
    await first.stop()
    controller.power_off()  # the old lock is gone from the air
    save_state(first.lock, state_file)
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    second = await add_lock(bleak_on_radio, fast_lock(state_file=state_file))
    assert second.lock.world.authorizations.keys() == first.lock.world.authorizations.keys()
    client = await connected(store)
    try:
        assert (await client.keyturner_states()).lock_state == LockState.LOCKED
    finally:
        await client.close()
