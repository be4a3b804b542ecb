"""Across processes: `kasify-sim radio`, `kasify-sim nuki serve`, and `kasify-agent nuki …`."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import build_parser as agent_parser
from agent.config import load_config
from agent.locks.nuki.store import NukiStore
from simulator.cli import build_parser as sim_parser
from simulator.nuki.control import NukiControl
from simulator.stack import command

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: object, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not predicate():  # type: ignore[operator]
        if process.poll() is not None:
            raise AssertionError(f"{what}: process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, object]]:
    """A radio and an emulated lock, each its own process, plus an agent config for the radio."""
    agent_port, lock_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *argv: str) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        processes.append(process)
        return process

    try:
        radio = start(
            "radio",
            *command("kasify-sim", "radio", "--port", str(agent_port), "--port", str(lock_port)),
        )
        wait_until(lambda: port_open(lock_port), "radio", radio)
        control = tmp_path / "nuki.sock"
        lock = start(
            "nuki",
            *command(
                "kasify-sim", "nuki", "serve", "--hci", f"tcp-client:127.0.0.1:{lock_port}",
                "--control", str(control), "--motor-s", "0.05", "--push-interval-s", "0.02",
                "--pin", "2580", "--pairing", "60", "--state", str(tmp_path / "lock.json"),
            ),
        )  # fmt: skip
        wait_until(control.exists, "nuki emulator", lock)
        config = tmp_path / "agent.toml"
        config.write_text(
            f'state_dir = "{tmp_path / "agent"}"\nlog_level = "warning"\n'
            f'[ble]\nhci = "tcp-client:127.0.0.1:{agent_port}"\n'
        )
        yield {"config": config, "control": control, "state_dir": tmp_path / "agent"}
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def agent(config: object, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command("kasify-agent", "--config", str(config), "nuki", *args),
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip


@pytest.mark.e2e
def test_pair_across_processes_then_state_action_codes_and_scan(site: dict[str, object]) -> None:
    config = site["config"]
    paired = agent(config, "pair", "2A3B4C5D", "--pin", "2580")
    assert paired.returncode == 0, paired.stderr
    report = json.loads(paired.stdout)
    assert report["paired"] is True
    assert report["pin_verified"] is True
    assert report["lock_state"] == "locked"
    assert NukiStore(Path(str(site["state_dir"]))).credentials("2A3B4C5D") is not None

    state = agent(config, "state")
    assert state.returncode == 0, state.stderr
    assert json.loads(state.stdout)["lock_state"] == "locked"

    action = agent(config, "action", "unlatch")
    assert action.returncode == 0, action.stderr
    assert json.loads(action.stdout)["state"] in ("unlocked", "unlatched")

    status = asyncio.run(NukiControl(str(site["control"])).status())
    assert [a["id_type"] for a in status["authorizations"]] == ["bridge"]
    assert status["lock_state"] in ("unlocked", "unlatched", "unlatching")

    codes = agent(config, "codes")
    assert codes.returncode == 0, codes.stderr
    assert json.loads(codes.stdout) == []

    scan = agent(config, "scan", "--seconds", "1")
    assert scan.returncode == 0, scan.stderr
    [seen] = json.loads(scan.stdout)
    assert (seen["nuki_id"], seen["paired"]) == ("2A3B4C5D", True)


@pytest.mark.e2e
def test_a_wrong_pin_is_reported_and_pairing_a_missing_lock_fails_clearly(
    site: dict[str, object],
) -> None:
    config = site["config"]
    wrong = agent(config, "pair", "2A3B4C5D", "--pin", "1111")
    assert wrong.returncode == 2
    assert "rejected the security PIN" in json.loads(wrong.stdout)["error"]
    missing = agent(config, "pair", "11111111", "--timeout", "1")
    assert missing.returncode == 2
    assert "not found" in missing.stderr


def test_cli_parsers_know_the_nuki_commands() -> None:
    args = agent_parser().parse_args(["nuki", "action", "unlatch", "2A3B4C5D"])
    assert (args.action, args.nuki_id) == ("unlatch", "2A3B4C5D")
    args = sim_parser().parse_args(["nuki", "fault", "drop_after_accept", "--control", "/s"])
    assert (args.kind, args.count) == ("drop_after_accept", 1)
    args = sim_parser().parse_args(["radio", "--port", "9101", "--port", "9102"])
    assert args.port == [9101, 9102]


def test_the_commented_ble_and_nuki_examples_are_valid(tmp_path: Path) -> None:
    shipped = (REPO / "config" / "agent.toml").read_text()
    lines = []
    for line in shipped.splitlines():
        if line in ("# [ble]", "# [nuki]") or line.startswith(
            ("# hci =", "# enabled =", "# app_id", "# name =", "# time_sync", "# reachable",
             "# linger", "# connect_timeout", "# scan_mode")
        ):  # fmt: skip
            line = line[2:]
        lines.append(line)
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines))
    config = load_config(path, environ={})
    assert config.ble.hci == "tcp-client:127.0.0.1:9001"
    assert config.nuki.time_sync_interval_s == 43200
