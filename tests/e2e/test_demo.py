"""`make demo` started as a new user would, its printed instructions followed, then Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.broker import free_port, listening

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180.0  # make's checks, then the stack, Nuki pairing and the first codes
STOP_TIMEOUT_S = 30.0
SIM = re.compile(r"^\s*(\S*kasify-sim .* --control \S+.*)$")


def _read_banner(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            return "".join(lines)
    raise AssertionError("the demo did not come up:\n" + "".join(lines))


def _shell(command: str) -> str:
    result = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _until(command: str, check: Any, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = json.loads(_shell(command))
        if check(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.3)


def _dashboard_shows_the_entries(banner: str) -> None:
    """Log in to the dashboard with the printed login, as a host would, and look."""
    match = re.search(r"Dashboard\s+(\S+)\s+log in as (\S+) / (\S+)", banner)
    assert match, banner
    url, email, password = match.groups()
    with httpx.Client(base_url=url, follow_redirects=True, timeout=30) as browser:
        form = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf, form.text[:500]
        overview = browser.post(
            "/login",
            data={"email": email, "password": password, "csrf": csrf.group(1), "next": "/"},
        )
        assert overview.status_code == 200
        assert "Casa Demo" in overview.text
        for lock in ("Front door", "Apartment door", "Building entrance"):
            assert lock in overview.text
        link = re.search(r'href="(/app/properties/[^"]+)"', overview.text)
        assert link
        page = browser.get(link.group(1))
        assert "Ada Lovelace" in page.text
        assert 'data-state="set"' in page.text


def test_make_demo_and_its_instructions(tmp_path: Path) -> None:
    api_port, broker_port = free_port(), free_port()
    args = f"--dir {tmp_path / 'demo'} --api-port {api_port} --broker-port {broker_port}"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "demo", f"DEMO_ARGS={args}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        banner = _read_banner(process)
        assert "on the locks: Front door: set, Apartment door: set, Building entrance: set" in (
            banner
        )
        keypad, unifi, nuki, wrong = [
            m.group(1) for line in banner.splitlines() if (m := SIM.match(line))
        ]
        for command in (keypad, unifi, nuki):
            assert json.loads(_shell(command))["result"] == "granted", command
        refused = json.loads(_shell(wrong))
        assert refused["result"] == "denied"
        assert not refused["relay_pulsed"]

        api_part = banner.split("The API:\n")[1]
        feed_command = api_part.split("Create another booking")[0]

        def methods(feed: dict[str, Any]) -> set[str]:
            return {
                a["method"]
                for a in feed["activities"]
                if a["type"] == "access_granted" and a["guestName"] == "Ada Lovelace"
            }

        _until(
            feed_command,
            lambda feed: methods(feed) >= {"gateway_keypad", "unifi_pin", "nuki_keypad"},
        )

        _dashboard_shows_the_entries(banner)

        booking_command = banner.split("Create another booking")[1].split("Logs are in")[0]
        booking_command = booking_command.split(":\n", 1)[1]
        token_line = feed_command.split("curl -s -H")[0]
        created = json.loads(_shell(token_line + booking_command))
        assert created["guestName"] == "Grace Hopper"
        assert re.fullmatch(r"[1-9]{6}", created["accessCodes"][0]["pin"])
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    # make itself dies of the SIGINT (as after Ctrl-C in a terminal); the demo stops cleanly.
    assert process.stdout is not None
    assert "stopping" in process.stdout.read()
    assert not listening("127.0.0.1", api_port)
    assert not listening("127.0.0.1", broker_port)
