"""A whole simulated property on one machine, every part its own process, driven by the CLIs.

Used by `kasify-sim demo`, the end-to-end tests and the benchmarks. The steps are the ones a person
follows: `kasify-cloud init` and `broker-config`, `mosquitto -c`, `kasify-cloud serve`, the REST
API for the account, property, gateway and lock, `kasify-sim keypad serve`, `kasify-agent enroll`
and `kasify-agent run`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from simulator.broker import find_mosquitto, free_port, listening

START_TIMEOUT_S = 30.0  # a cold start of the cloud (imports, migrations) on a slow Pi-class box
STOP_TIMEOUT_S = 10.0
POLL_S = 0.05


class StackError(RuntimeError):
    """A part of the stack did not come up; the message says which and shows its log."""


_MODULES = {
    "kasify-cloud": "cloud_api.cli",
    "kasify-agent": "agent.cli",
    "kasify-sim": "simulator.cli",
}


def command(name: str, *args: str) -> list[str]:
    """argv for one of our console scripts from this environment (or `python -m` its module)."""
    script = Path(sys.executable).parent / name
    head = [str(script)] if script.exists() else [sys.executable, "-m", _MODULES[name]]
    return [*head, *args]


@dataclass
class Service:
    """One running process of the stack and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self, tail: int = 3000) -> str:
        """The end of its log."""
        return self.log_path.read_text(errors="replace")[-tail:]

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not leave in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Api:
    """A small client for the cloud's REST API, logged in as one user."""

    base_url: str
    token: str | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30.0)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        """One request; raise StackError with the cloud's message on an unexpected status."""
        response = self.client.request(method, path, json=body, headers=self._headers())
        if response.status_code != expect:
            raise StackError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def register_or_login(self, email: str, password: str, name: str) -> None:
        """Log in, registering the account first if it does not exist yet."""
        login = self.client.post("/auth/login", json={"email": email, "password": password})
        if login.status_code == 200:
            self.token = login.json()["token"]
            return
        body = self.call(
            "POST", "/auth/register", {"email": email, "password": password, "name": name}, 201
        )
        self.token = body["token"]

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


@dataclass
class Stack:
    """The processes of one simulated property, under one directory."""

    root: Path
    api_port: int
    broker_port: int
    services: list[Service] = field(default_factory=list)
    unifi: dict[str, Any] = field(default_factory=dict)
    radio_ports: tuple[int, ...] = ()

    @property
    def cloud_data(self) -> Path:
        """The cloud's data directory (CA, signing key, SQLite database)."""
        return self.root / "cloud"

    @property
    def agent_state(self) -> Path:
        """The agent's state directory."""
        return self.root / "agent"

    @property
    def agent_config(self) -> Path:
        """The agent's configuration file."""
        return self.root / "agent.toml"

    @property
    def keypad_link(self) -> Path:
        """The emulated keypad's serial device (a symlink to a pty)."""
        return self.root / "ttyKEYPAD"

    @property
    def keypad_control(self) -> Path:
        """The emulated keypad's control socket."""
        return self.root / "keypad.sock"

    @property
    def api_url(self) -> str:
        """The cloud's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    def cloud_env(self, broker_pid: int | None = None) -> dict[str, str]:
        """The environment every `kasify-cloud` command of this stack runs with."""
        env = dict(os.environ)
        env.update(
            KASIFY_DATA_DIR=str(self.cloud_data),
            KASIFY_BROKER_HOST="127.0.0.1",
            KASIFY_BROKER_PORT=str(self.broker_port),
            KASIFY_PUBLIC_URL=self.api_url,
        )
        if broker_pid is not None:
            env["KASIFY_BROKER_RELOAD_COMMAND"] = f"kill -HUP {broker_pid}"
        return env

    def _run(self, argv: list[str], env: dict[str, str] | None = None) -> str:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Service:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def _wait(self, service: Service, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not service.alive():
                raise StackError(f"{service.name} exited while starting:\n{service.log()}")
            with contextlib.suppress(OSError, httpx.HTTPError):
                if ready():
                    return
            time.sleep(POLL_S)
        raise StackError(
            f"{service.name}: {what} not ready in {START_TIMEOUT_S} s:\n{service.log()}"
        )

    # --- the parts, in the order a person starts them ----------------------------------------

    def init_cloud(self) -> None:
        """`kasify-cloud init`: CA, signing key, database (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._run(command("kasify-cloud", "init"), self.cloud_env())

    def start_broker(self) -> Service:
        """`kasify-cloud broker-config` then `mosquitto -c` on the written configuration."""
        broker_dir = self.root / "broker"
        self._run(
            command(
                "kasify-cloud",
                "broker-config",
                "--out",
                str(broker_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.broker_port),
                "--server-name",
                "127.0.0.1",
            ),
            self.cloud_env(),
        )
        service = self._spawn(
            "mosquitto", [find_mosquitto(), "-c", str(broker_dir / "mosquitto.conf")]
        )
        self._wait(service, lambda: listening("127.0.0.1", self.broker_port), "broker port")
        return service

    def start_cloud(self, broker: Service | None = None) -> Service:
        """`kasify-cloud serve` until /healthz says the MQTT link is up."""
        pid = broker.process.pid if broker else None
        service = self._spawn(
            "cloud",
            command("kasify-cloud", "serve", "--port", str(self.api_port)),
            self.cloud_env(pid),
        )

        def healthy() -> bool:
            body = httpx.get(f"{self.api_url}/healthz", timeout=2.0).json()
            return bool(body.get("mqtt") == "connected")

        self._wait(service, healthy, "API with its broker connection")
        return service

    def start_keypad(self) -> Service:
        """`kasify-sim keypad serve`: the keypad controller on a pty."""
        self.keypad_control.unlink(missing_ok=True)
        service = self._spawn(
            "keypad",
            command(
                "kasify-sim",
                "keypad",
                "serve",
                "--link",
                str(self.keypad_link),
                "--control",
                str(self.keypad_control),
            ),
        )
        self._wait(service, self.keypad_control.exists, "keypad control socket")
        return service

    @property
    def unifi_control(self) -> Path:
        """The emulated UniFi controller's control socket."""
        return self.root / "unifi.sock"

    @property
    def nuki_control(self) -> Path:
        """The emulated Nuki lock's control socket."""
        return self.root / "nuki.sock"

    def start_unifi(self, doors: int = 1, port: int = 0) -> dict[str, Any]:
        """`kasify-sim unifi serve`: an emulated UniFi Access controller; returns its details.

        Its certificate, token and doors live in `unifi/`, so a restart is the same console.
        """
        info_file = self.root / "unifi.json"
        info_file.unlink(missing_ok=True)
        self.unifi_control.unlink(missing_ok=True)
        service = self._spawn(
            "unifi",
            command(
                "kasify-sim",
                "unifi",
                "serve",
                "--port",
                str(port),
                "--doors",
                str(doors),
                "--control",
                str(self.unifi_control),
                "--info-file",
                str(info_file),
                "--state-dir",
                str(self.root / "unifi"),
            ),
        )
        self._wait(service, info_file.exists, "UniFi controller")
        info: dict[str, Any] = json.loads(info_file.read_text())
        self.unifi = info
        return info

    def trust_unifi(self) -> str:
        """`kasify-agent unifi trust URL --fingerprint FP`, as the installer would run it."""
        return self._run(
            command(
                "kasify-agent",
                "--config",
                str(self.agent_config),
                "unifi",
                "trust",
                self.unifi["url"],
                "--fingerprint",
                self.unifi["fingerprint"],
            )
        )

    def start_radio(self, ports: tuple[int, int] | None = None) -> Service:
        """`kasify-sim radio`: two bumble controllers on one virtual BLE link."""
        self.radio_ports = ports or (free_port(), free_port())
        argv = ["kasify-sim", "radio"]
        for port in self.radio_ports:
            argv += ["--port", str(port)]
        service = self._spawn("radio", command(*argv))
        self._wait(
            service,
            lambda: all(listening("127.0.0.1", port) for port in self.radio_ports),
            "virtual radio",
        )
        return service

    def start_nuki(self, nuki_id: str = "2A3B4C5D", pin: int = 1234) -> Service:
        """`kasify-sim nuki serve`: an emulated Nuki Smart Lock on the radio's second port."""
        self.nuki_control.unlink(missing_ok=True)
        service = self._spawn(
            "nuki",
            command(
                "kasify-sim",
                "nuki",
                "serve",
                "--hci",
                f"tcp-client:127.0.0.1:{self.radio_ports[1]}",
                "--control",
                str(self.nuki_control),
                "--nuki-id",
                nuki_id,
                "--pin",
                str(pin),
                "--state",
                str(self.root / "nuki-lock.json"),
            ),
        )
        self._wait(service, self.nuki_control.exists, "Nuki lock")
        return service

    def pair_nuki(self, nuki_id: str, pin: int) -> str:
        """Put the lock in pairing mode (its button), then `kasify-agent nuki pair`."""
        self._run(
            command("kasify-sim", "nuki", "pairing", "on", "--control", str(self.nuki_control))
        )
        return self._run(
            command(
                "kasify-agent",
                "--config",
                str(self.agent_config),
                "nuki",
                "pair",
                nuki_id,
                "--pin",
                str(pin),
            )
        )

    def write_agent_config(self, *, keypad: bool = True) -> None:
        """The agent's agent.toml for the parts this stack runs."""
        text = (
            f'state_dir = "{self.agent_state}"\nlog_level = "info"\n\n'
            "[clock]\n# This host's clock is kept by its hypervisor; the kernel cannot tell.\n"
            "assume_synchronized = true\n"
        )
        if keypad:
            text += f'\n[keypad]\nport = "{self.keypad_link}"\nlock_ref = "keypad"\n'
        if self.radio_ports:
            text += f'\n[ble]\nhci = "tcp-client:127.0.0.1:{self.radio_ports[0]}"\n'
        if self.unifi:
            text += f'\n[unifi]\nurl = "{self.unifi["url"]}"\ntoken = "{self.unifi["token"]}"\n'
        self.agent_config.write_text(text)

    def enroll_agent(self, token: str, *, keypad: bool = True) -> None:
        """Write the agent's config file, then `kasify-agent enroll` with the one-time token."""
        self.write_agent_config(keypad=keypad)
        self._run(
            command(
                "kasify-agent",
                "--config",
                str(self.agent_config),
                "enroll",
                "--cloud",
                self.api_url,
                "--token",
                token,
            )
        )

    def start_agent(self) -> Service:
        """`kasify-agent run`."""
        service = self._spawn(
            "agent",
            command("kasify-agent", "--config", str(self.agent_config), "run"),
        )
        self._wait(service, lambda: "connected to" in service.log(), "agent's broker session")
        return service

    def stop(self) -> None:
        """Stop every part, newest first."""
        while self.services:
            self.services.pop().stop()

    def reset(self) -> None:
        """Remove everything under the stack's directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def provision_property(api: Api, name: str, timezone: str) -> dict[str, str]:
    """Create a property with one gateway and the keypad's relay lock; return their ids."""
    prop = api.call("POST", "/properties", {"name": name, "timezone": timezone}, 201)
    gateway = api.call("POST", f"/properties/{prop['id']}/gateways", {"name": "Entrance Pi"}, 201)
    lock = api.call(
        "POST",
        f"/properties/{prop['id']}/smartlocks",
        {"kind": "relay", "deviceRef": "keypad", "name": "Front door", "gatewayId": gateway["id"]},
        201,
    )
    return {
        "property_id": prop["id"],
        "gateway_id": gateway["id"],
        "lock_id": lock["id"],
        "enrollment_token": gateway["enrollmentToken"],
    }
