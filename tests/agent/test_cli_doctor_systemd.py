"""`kasify-agent codes | events | doctor`, and the systemd unit checked by systemd-analyze."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from agent.access import pin_mac
from agent.cli import main
from agent.doctor import Verdict, diagnose
from agent.outbox_queue import QueuedEvent
from agent.store import Store, StoredCode, StoredLock
from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker, free_port
from tests.agent.support import code, config, enrolled_state_dir

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "kasify-agent.service"


def _config_file(tmp_path: Path, state: Path, keypad: str | None = None) -> Path:
    text = f'state_dir = "{state}"\n[clock]\nassume_synchronized = true\n'
    if keypad:
        text += f'[keypad]\nport = "{keypad}"\n'
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_codes_and_events_list_what_is_cached_without_pins(
    ca: CertificateAuthority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    identity = enrolled_state_dir(state, ca, "gw-cli", SigningKey.generate())
    c = code(identity, "code-1", "345678")
    store = Store(state / "agent.db")
    assert c.starts_at is not None
    assert c.ends_at is not None
    store.apply_desired(
        version=2,
        digest="d",
        property_id="p",
        timezone="Europe/Madrid",
        locks=[StoredLock("lock-front", "relay", "keypad", "Front", {})],
        codes=[
            StoredCode(
                "code-1",
                "guest",
                pin_mac(identity.pin_key, "345678"),
                c.starts_at.timestamp(),
                c.ends_at.timestamp(),
                ("lock-front",),
                "booking-1",
                None,
                "Ada",
                c.pin,
            )
        ],
    )
    store.outbox.enqueue(
        [
            QueuedEvent(
                "e1",
                "access_granted",
                True,
                json.dumps(
                    {
                        "occurred_at": "2026-11-21T10:00:00Z",
                        "type": "access_granted",
                        "result": "granted",
                        "code_id": "code-1",
                    }
                ),
            )
        ]
    )
    store.close()
    cfg = str(_config_file(tmp_path, state))

    assert main(["--config", cfg, "codes"]) == 0
    out = capsys.readouterr().out
    assert "code-1" in out
    assert "Ada" in out
    assert "Europe/Madrid" in out
    assert "345678" not in out
    assert main(["--config", cfg, "codes", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["booking_id"] == "booking-1"
    assert "pin" not in json.dumps(row)

    assert main(["--config", cfg, "events"]) == 0
    out = capsys.readouterr().out
    assert "access_granted" in out
    assert "1 events waiting" in out


def test_doctor_passes_on_a_healthy_gateway(
    broker: RunningBroker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    enrolled_state_dir(state, ca, "gw-doctor", SigningKey.generate(), broker_port=broker.port)
    os.chmod(state, 0o700)
    master, slave = os.openpty()
    try:
        findings = diagnose(config(state, keypad={"port": os.ttyname(slave)}))
    finally:
        os.close(master)
        os.close(slave)
    verdicts = {f.area: f.verdict for f in findings}
    assert verdicts["broker"] is Verdict.OK
    assert verdicts["enrollment"] is Verdict.OK
    assert verdicts["keypad"] is Verdict.OK
    assert verdicts["clock"] is Verdict.OK
    assert not [f for f in findings if f.verdict is Verdict.FAIL]


def test_doctor_says_what_to_fix(
    ca: CertificateAuthority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    enrolled_state_dir(state, ca, "gw-sick", SigningKey.generate(), broker_port=free_port())
    os.chmod(state / "seal.key", 0o644)
    cfg = _config_file(tmp_path, state, keypad=str(tmp_path / "ttyNOPE"))
    assert main(["--config", str(cfg), "doctor"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAIL broker .*Connection refused", out)
    assert re.search(r"FAIL keypad .*does not exist: plug in the keypad controller", out)
    assert re.search(r"FAIL state .*seal.key is readable by others; run `chmod 600", out)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--state-dir", str(empty), "--config", str(cfg), "doctor", "--offline"]) == 1
    assert "kasify-agent enroll --cloud URL --token TOKEN" in capsys.readouterr().out


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (make test installs it: apt-get systemd)")
    return tool


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = _analyze()
    # The unit runs /opt/kasify-edge/bin/kasify-agent; point it at this checkout's script.
    script = Path(sys.executable).parent / "kasify-agent"
    unit = tmp_path / "kasify-agent.service"
    unit.write_text(UNIT.read_text().replace("/opt/kasify-edge/bin/kasify-agent", str(script)))
    result = subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_the_unit_is_rated_ok_or_better_by_systemd_analyze_security() -> None:
    tool = _analyze()
    result = subprocess.run(
        [tool, "security", "--offline=true", str(UNIT)], capture_output=True, text=True, check=False
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    assert match.group(2) in {"PERFECT", "SAFE", "OK"}, match.group(0)


def test_the_unit_declares_what_the_daemon_relies_on() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "StateDirectory=kasify-agent",
        "ConfigurationDirectory=kasify-agent",
        "SupplementaryGroups=dialout bluetooth",
    ):
        assert line in text
