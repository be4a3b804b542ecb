"""SerialKeypad over a real pty with the reference device logic on the other end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware_bridge.codec import encode_frame
from firmware_bridge.errors import DeliveryFailed, KeypadTimeout, NakReason, PortError
from firmware_bridge.messages import (
    DoorContact,
    DoorState,
    Hello,
    HelloReason,
    KeyEntry,
    Outcome,
    RelayPulse,
    Result,
    Tamper,
    TamperState,
)
from firmware_bridge.transport import SerialKeypad
from simulator.keypad import KeypadEmulator

from .support import WAIT_S, eventually, next_of

TRANSPORT_LOG = "firmware_bridge"


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[KeypadEmulator]:
    emu = KeypadEmulator(str(tmp_path / "ttyKEYPAD"))
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def keypad(emulator: KeypadEmulator) -> AsyncIterator[SerialKeypad]:
    async with SerialKeypad(emulator.link_path) as transport:
        await transport.wait_connected(WAIT_S)
        yield transport


async def next_hello(keypad: SerialKeypad, reason: HelloReason) -> Hello:
    """Return the next HELLO with the given reason (the queue may hold older ones)."""
    while (hello := await next_of(keypad, Hello)).reason is not reason:
        pass
    return hello


async def test_key_entry_is_delivered(emulator: KeypadEmulator, keypad: SerialKeypad) -> None:
    emulator.press("482915#")
    assert await next_of(keypad, KeyEntry) == KeyEntry("482915")
    assert keypad.connected
    assert keypad.device is not None
    assert keypad.device.relay_count == 1


async def test_relay_pulse_is_acknowledged_and_pulses_the_relay(
    emulator: KeypadEmulator, keypad: SerialKeypad
) -> None:
    await keypad.send(RelayPulse(0, 200))
    assert emulator.device.relay_energised(0)
    await eventually(lambda: not emulator.device.relay_energised(0))


async def test_fire_and_forget_pulse_and_result(
    emulator: KeypadEmulator, keypad: SerialKeypad
) -> None:
    emulator.press("123456#")
    await next_of(keypad, KeyEntry)
    keypad.send_nowait(RelayPulse(0, 3000))
    keypad.send_nowait(Result(Outcome.GRANTED))
    await eventually(lambda: emulator.device.last_outcome is Outcome.GRANTED)
    assert emulator.device.relay_energised(0)


async def test_garbage_on_the_line_is_logged_and_the_link_keeps_working(
    emulator: KeypadEmulator, keypad: SerialKeypad, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TRANSPORT_LOG)
    bad_crc = bytearray(encode_frame(KeyEntry("1111"), 9))
    bad_crc[5] ^= 0x80
    emulator.write_raw(b"\x13\x37" * 60 + b"\x00\x09\x01\x02\x00\x04\x01\x02\x03" + bad_crc)
    emulator.press("2468#")
    assert await next_of(keypad, KeyEntry) == KeyEntry("2468")
    await keypad.send(Result(Outcome.DENIED))
    assert emulator.device.last_outcome is Outcome.DENIED
    logged = " | ".join(r.getMessage() for r in caplog.records)
    for problem in ("oversized frame", "bad COBS", "truncated frame", "bad CRC"):
        assert problem in logged
    assert keypad.frame_errors == 4


async def test_corrupted_and_dropped_frames_are_recovered(
    emulator: KeypadEmulator, keypad: SerialKeypad
) -> None:
    emulator.corrupt = 1
    emulator.drop_in = 1
    emulator.press("1357#")
    assert await next_of(keypad, KeyEntry) == KeyEntry("1357")
    await keypad.send(Result(Outcome.GRANTED))
    assert emulator.device.last_outcome is Outcome.GRANTED


async def test_port_disappearing_and_coming_back_reconnects(
    emulator: KeypadEmulator, keypad: SerialKeypad, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=TRANSPORT_LOG)
    before = keypad.device
    assert before is not None
    emulator.unplug(0.4)
    await eventually(lambda: not keypad.connected)
    with pytest.raises(PortError):
        keypad.send_nowait(Result(Outcome.DENIED))
    # The device rebooted when plugged back in, so it announces a new session.
    await eventually(
        lambda: keypad.connected and keypad.device is not None and keypad.device != before
    )
    emulator.press("9753#")
    assert await next_of(keypad, KeyEntry) == KeyEntry("9753")
    await keypad.send(RelayPulse(0, 100))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost" in m for m in messages) == 1
    assert sum("retrying with backoff" in m for m in messages) <= 1  # once per outage


async def test_port_missing_at_start_is_retried_until_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TRANSPORT_LOG)
    path = str(tmp_path / "ttyLATER")
    async with SerialKeypad(path) as keypad:
        await asyncio.sleep(0.5)
        assert not keypad.connected
        emulator = KeypadEmulator(path)
        await emulator.start()
        try:
            await keypad.wait_connected(WAIT_S)
            emulator.press("8642#")
            assert await next_of(keypad, KeyEntry) == KeyEntry("8642")
        finally:
            await emulator.stop()
    warnings = [r.getMessage() for r in caplog.records if "retrying with backoff" in r.getMessage()]
    assert len(warnings) == 1
    assert "port missing" in warnings[0]


async def test_sending_without_an_open_port_raises_port_error(tmp_path: Path) -> None:
    keypad = SerialKeypad(str(tmp_path / "nothing"))
    with pytest.raises(PortError, match="not open"):
        keypad.send_nowait(Result(Outcome.GRANTED))
    with pytest.raises(PortError, match="not open"):
        await keypad.send(Result(Outcome.GRANTED))
    assert not keypad.connected
    assert keypad.device is None


async def test_refused_message_raises_delivery_failed(keypad: SerialKeypad) -> None:
    with pytest.raises(DeliveryFailed) as failure:
        await keypad.send(RelayPulse(3, 100))
    assert failure.value.nak is NakReason.BAD_PAYLOAD


async def test_hung_device_fails_delivery_then_recovers(
    emulator: KeypadEmulator, keypad: SerialKeypad
) -> None:
    emulator.set_hang(True)
    with pytest.raises(KeypadTimeout):
        await keypad.send(Result(Outcome.DENIED), timeout=0.05)
    with pytest.raises(DeliveryFailed, match="not delivered"):
        await keypad.send(Result(Outcome.DENIED))
    emulator.set_hang(False)
    await keypad.send(Result(Outcome.GRANTED))
    assert emulator.device.last_outcome is Outcome.GRANTED


async def test_silent_device_marks_the_link_down_until_it_speaks_again(
    emulator: KeypadEmulator, keypad: SerialKeypad, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TRANSPORT_LOG)
    emulator.set_hang(True)
    await eventually(lambda: any("link down" in r.getMessage() for r in caplog.records))
    assert not keypad.connected
    emulator.set_hang(False)
    await eventually(lambda: keypad.connected)
    await keypad.send(Result(Outcome.GRANTED))
    assert emulator.device.last_outcome is Outcome.GRANTED


async def test_device_reboot_is_noticed_and_the_session_renewed(
    emulator: KeypadEmulator, keypad: SerialKeypad
) -> None:
    emulator.reboot()
    assert await next_hello(keypad, HelloReason.BOOT)
    assert await next_hello(keypad, HelloReason.REQUESTED)  # our HOST_HELLO was answered
    await keypad.send(Result(Outcome.LOCKED_OUT))
    assert emulator.device.last_outcome is Outcome.LOCKED_OUT


async def test_door_and_tamper_events(emulator: KeypadEmulator, keypad: SerialKeypad) -> None:
    emulator.set_door(True)
    emulator.set_tamper(True)
    assert await next_of(keypad, DoorContact) == DoorContact(DoorState.OPEN)
    assert await next_of(keypad, Tamper) == Tamper(TamperState.ACTIVE)
    await eventually(lambda: keypad.status is not None and keypad.status.door_open)
