"""kasify-sim keypad end to end: the emulator as a process, the agent's transport, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from firmware_bridge.messages import (
    DoorContact,
    DoorState,
    KeyEntry,
    Outcome,
    RelayPulse,
    Result,
    Tamper,
    TamperState,
)
from firmware_bridge.transport import SerialKeypad
from simulator.keypad import KeypadControl
from tests.firmware_bridge.support import WAIT_S, eventually, next_of

_SCRIPT = Path(sys.executable).with_name("kasify-sim")
KASIFY_SIM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "simulator.cli"]
PIPE = asyncio.subprocess.PIPE


@dataclass
class Served:
    """A running `kasify-sim keypad serve` process."""

    process: asyncio.subprocess.Process
    link: Path
    control: Path
    banner: str


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: Unix socket paths are limited to ~107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="kp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def start_serving(directory: Path) -> Served:
    link, control = directory / "ttyKEYPAD", directory / "keypad.sock"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli", "keypad", "serve",
        "--link", str(link), "--control", str(control),
        stdout=PIPE, stderr=PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    async with asyncio.timeout(WAIT_S * 2):
        banner = (await process.stdout.readline()).decode()
    return Served(process, link, control, banner)


@pytest.fixture
async def served(short_dir: Path) -> AsyncIterator[Served]:
    running = await start_serving(short_dir)
    yield running
    if running.process.returncode is None:
        running.process.terminate()
        await running.process.wait()


@pytest.fixture
async def keypad(served: Served) -> AsyncIterator[SerialKeypad]:
    async with SerialKeypad(str(served.link)) as transport:
        await transport.wait_connected(WAIT_S)
        yield transport


async def kasify_sim(*args: str) -> tuple[int, str, str]:
    """Run kasify-sim with args; return its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(*KASIFY_SIM, *args, stdout=PIPE, stderr=PIPE)
    async with asyncio.timeout(WAIT_S * 2):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_banner_says_where_the_emulator_is(served: Served) -> None:
    tty = os.readlink(served.link)
    assert served.banner.strip() == (
        f"kasify-sim keypad: {served.link} -> {tty}, control socket {served.control}"
    )
    assert tty.startswith("/dev/pts/")


async def test_typed_code_reaches_the_agent_and_the_grant_is_reported(
    served: Served, keypad: SerialKeypad
) -> None:
    control = str(served.control)
    typing = asyncio.create_task(
        kasify_sim("keypad", "type", "123456", "--control", control, "--wait", "5")
    )
    assert await next_of(keypad, KeyEntry) == KeyEntry("123456")
    keypad.send_nowait(RelayPulse(0, 3000))
    keypad.send_nowait(Result(Outcome.GRANTED))
    status, out, _ = await typing
    assert status == 0
    reaction = json.loads(out)
    assert reaction["code"] == "123456"
    assert reaction["result"] == "granted"
    assert reaction["relay_pulsed"] is True
    assert reaction["relay"] == 0
    assert reaction["pulse_ms"] == 3000


async def test_denied_code_reports_no_pulse(served: Served, keypad: SerialKeypad) -> None:
    reaction_task = asyncio.create_task(KeypadControl(str(served.control)).type_code("0000", 5))
    assert await next_of(keypad, KeyEntry) == KeyEntry("0000")
    keypad.send_nowait(Result(Outcome.DENIED))
    reaction = await reaction_task
    assert reaction["result"] == "denied"
    assert reaction["relay_pulsed"] is False


async def test_type_without_an_agent_reports_none(served: Served) -> None:
    status, out, _ = await kasify_sim(
        "keypad", "type", "4321", "--control", str(served.control), "--wait", "0.3"
    )
    assert status == 0
    assert json.loads(out)["result"] == "none"


async def test_door_and_tamper_commands_reach_the_agent(
    served: Served, keypad: SerialKeypad
) -> None:
    assert (await kasify_sim("keypad", "door", "open", "--control", str(served.control)))[0] == 0
    assert await next_of(keypad, DoorContact) == DoorContact(DoorState.OPEN)
    assert (await kasify_sim("keypad", "tamper", "on", "--control", str(served.control)))[0] == 0
    assert await next_of(keypad, Tamper) == Tamper(TamperState.ACTIVE)


async def test_watch_streams_device_effects(served: Served) -> None:
    control = str(served.control)
    watching = asyncio.create_task(
        kasify_sim("keypad", "watch", "--count", "2", "--control", control)
    )
    emulator = KeypadControl(control)
    async with asyncio.timeout(WAIT_S * 2):  # the watcher must subscribe before the keys go down
        while (await emulator.status())["watchers"] == 0:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.02)
    await emulator.press("42")
    status, out, _ = await watching
    events = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [(e["kind"], e["key"]) for e in events] == [("key", "4"), ("key", "2")]


async def test_status_reports_the_pty(served: Served) -> None:
    status, out, _ = await kasify_sim("keypad", "status", "--control", str(served.control))
    state = json.loads(out)
    assert status == 0
    assert state["tty"] == os.readlink(served.link)
    assert state["plugged"] is True
    assert state["relays"] == [False]


async def test_faults_are_survived_by_the_agent(served: Served, keypad: SerialKeypad) -> None:
    control = KeypadControl(str(served.control))
    await control.fault("drop", count=2, direction="out")
    await control.fault("garbage", count=100)
    await control.fault("corrupt", count=1)
    await control.type_code("2580")
    assert await next_of(keypad, KeyEntry) == KeyEntry("2580")
    await keypad.send(Result(Outcome.GRANTED))
    assert (await control.status())["last_outcome"] == "granted"


async def test_unplug_makes_the_agent_reopen_the_port(served: Served, keypad: SerialKeypad) -> None:
    control = KeypadControl(str(served.control))
    status, _, _ = await kasify_sim(
        "keypad", "fault", "unplug", "--seconds", "0.4", "--control", str(served.control)
    )
    assert status == 0
    await eventually(lambda: not keypad.connected)
    await eventually(lambda: keypad.connected)
    assert (await control.status())["plugged"] is True
    assert served.link.is_symlink()
    await control.type_code("1470")
    assert await next_of(keypad, KeyEntry) == KeyEntry("1470")
    assert (await control.status())["tty"] == os.readlink(served.link)


async def test_hang_and_resume(served: Served, keypad: SerialKeypad) -> None:
    assert (await kasify_sim("keypad", "fault", "hang", "--control", str(served.control)))[0] == 0
    assert (await KeypadControl(str(served.control)).status())["hung"] is True
    assert (await kasify_sim("keypad", "fault", "resume", "--control", str(served.control)))[0] == 0
    await keypad.send(Result(Outcome.DENIED))


async def test_bad_requests_are_answered_with_errors(served: Served) -> None:
    control = KeypadControl(str(served.control))
    with pytest.raises(RuntimeError, match="unknown command 'dance'"):
        await control.request({"cmd": "dance"})
    with pytest.raises(RuntimeError, match="code must be digits"):
        await control.type_code("12ab")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_cleanly_and_removes_link_and_socket(
    short_dir: Path, signum: signal.Signals
) -> None:
    running = await start_serving(short_dir)
    assert running.link.is_symlink()
    assert running.control.exists()
    running.process.send_signal(signum)
    async with asyncio.timeout(WAIT_S):
        assert await running.process.wait() == 0
    assert not running.link.exists()
    assert not running.link.is_symlink()
    assert not running.control.exists()


async def test_client_without_emulator_fails_with_a_message(short_dir: Path) -> None:
    status, _, err = await kasify_sim("keypad", "status", "--control", str(short_dir / "none"))
    assert status == 1
    assert "keypad emulator at" in err
