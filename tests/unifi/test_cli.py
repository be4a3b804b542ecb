"""`kasify-agent unifi …` against `kasify-sim unifi serve` running as its own process."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main as agent_main
from simulator.cli import main as sim_main
from simulator.stack import command

START_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`kasify-sim unifi serve` on a free port, with its control socket."""
    root = tmp_path_factory.mktemp("unifi-sim")
    info_file, control = root / "info.json", root / "unifi.sock"
    process = subprocess.Popen(
        command(
            "kasify-sim",
            "unifi",
            "serve",
            "--port",
            "0",
            "--doors",
            "2",
            "--unlock-seconds",
            "0.3",
            "--hello-seconds",
            "0.5",
            "--control",
            str(control),
            "--info-file",
            str(info_file),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (info_file.exists() and control.exists()):
            if process.poll() is not None or time.monotonic() > deadline:
                _, err = process.communicate(timeout=5)
                raise AssertionError(f"kasify-sim unifi serve did not start: {err.decode()}")
            time.sleep(0.02)
        info = json.loads(info_file.read_text())
        assert stat.S_IMODE(info_file.stat().st_mode) == 0o600  # it holds the token
        assert info["control"] == str(control)
        yield info
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def config(tmp_path: Path, served: dict[str, Any]) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "state"}"\nlog_level = "warning"\n'
        f'[unifi]\ntoken = "{served["token"]}"\n'
    )
    return path


def agent(config: Path, *args: str) -> int:
    return agent_main(["--config", str(config), "unifi", *args])


def sim(served: dict[str, Any], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        command("kasify-sim", "unifi", *args, "--control", served["control"]),
        capture_output=True,
        check=True,
        timeout=30,
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_trust_prints_and_pins_the_certificate(
    config: Path, served: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert agent(config, "trust", served["url"]) == 0
    out = capsys.readouterr().out
    assert served["fingerprint"] in out
    assert "CN=UniFi Access Emulator" in out
    assert "token accepted: 2 doors" in out
    stored = tmp_path / "state" / "unifi.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["fingerprint"] == served["fingerprint"]


def test_trust_refuses_an_unexpected_fingerprint(
    config: Path, served: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert agent(config, "trust", served["url"], "--fingerprint", "00" * 32) == 2
    assert "not the expected" in capsys.readouterr().err
    assert not (tmp_path / "state" / "unifi.json").exists()


def test_commands_before_trust_name_the_fix(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert agent(config, "doors") == 2
    assert "run `kasify-agent unifi trust" in capsys.readouterr().err


def test_doors_unlock_and_visitors(
    config: Path, served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert agent(config, "trust", served["url"]) == 0
    capsys.readouterr()
    assert agent(config, "doors", "--json") == 0
    doors = json.loads(capsys.readouterr().out)
    assert [d["door_id"] for d in doors] == [d["id"] for d in served["doors"]]
    assert {d["relay"] for d in doors} <= {"lock", "unlock"}
    assert agent(config, "doors") == 0
    assert "DOOR_ID" in capsys.readouterr().out
    logs_before = sim(served, "status")["logs"]
    assert agent(config, "unlock", "door 2") == 0  # by name, any case
    assert f"unlocked Door 2 ({served['doors'][1]['id']})" in capsys.readouterr().out
    assert sim(served, "status")["logs"] == logs_before + 1
    assert agent(config, "unlock", "Garage") == 2
    assert "no door is called 'Garage'" in capsys.readouterr().err
    assert agent(config, "visitors") == 0
    assert "no visitors carry our codes" in capsys.readouterr().out


def test_a_token_of_another_app_is_reported(
    tmp_path: Path, served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[unifi]\ntoken = "Bearer abc"\n')
    assert agent(path, "trust", served["url"]) == 0  # trusted, but the token is refused
    assert "UniFi Access API token" in capsys.readouterr().err
    assert agent(path, "doors") == 2
    assert "other UniFi apps" in capsys.readouterr().err


def test_type_a_pin_from_another_process(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    answer = sim(served, "type-pin", "1", "13572468")
    assert (answer["result"], answer["door_id"]) == ("denied", served["doors"][0]["id"])
    control = ["--control", served["control"]]
    assert sim_main(["unifi", "token", "--scopes", "view:space", *control]) == 0
    assert json.loads(capsys.readouterr().out)["token"]
    assert sim_main(["unifi", "fault", "http", "--status", "503", *control]) == 0
    assert sim_main(["unifi", "fault", "clear", *control]) == 0
    assert sim_main(["unifi", "door", "9", "open", *control]) == 1
    assert "door 9 not found" in capsys.readouterr().err


def test_sim_client_without_a_socket(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KASIFY_SIM_UNIFI_CONTROL", raising=False)
    assert sim_main(["unifi", "status"]) == 2
    assert "KASIFY_SIM_UNIFI_CONTROL" in capsys.readouterr().err
