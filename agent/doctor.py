"""`kasify-agent doctor`: check everything the agent depends on and say what to fix."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from cryptography import x509

from agent.clock import Clock, system_clock_synchronized
from agent.config import AgentConfig
from agent.identity import Identity, NotEnrolled
from agent.store import Store, StoreError
from sync_protocol.mqtt import MqttError, MqttSession

BROKER_CHECK_TIMEOUT_S = 10.0
LOW_DISK_BYTES = 200 * 1024 * 1024  # below this the outbox cap may not fit
CERT_WARN_DAYS = 30
SECRET_FILES = ("tls/client.key", "seal.key", "pin.key")


class Verdict(StrEnum):
    """How a check ended."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: what was checked, the verdict, and what to do."""

    area: str
    verdict: Verdict
    text: str


def _state_dir(config: AgentConfig) -> list[Finding]:
    path = config.state_dir
    if not path.is_dir():
        return [
            Finding(
                "state",
                Verdict.FAIL,
                f"{path} does not exist: create it (systemd's "
                "StateDirectory= does) or set state_dir in agent.toml",
            )
        ]
    found = []
    mode = stat.S_IMODE(path.stat().st_mode)
    if not os.access(path, os.W_OK):
        found.append(Finding("state", Verdict.FAIL, f"{path} is not writable by this user"))
    elif mode & 0o077:
        found.append(
            Finding("state", Verdict.WARN, f"{path} is mode {mode:o}; run `chmod 700 {path}`")
        )
    else:
        found.append(Finding("state", Verdict.OK, f"{path} (mode {mode:o})"))
    for name in SECRET_FILES:
        secret = path / name
        if secret.exists() and stat.S_IMODE(secret.stat().st_mode) & 0o077:
            found.append(
                Finding(
                    "state",
                    Verdict.FAIL,
                    f"{secret} is readable by others; run `chmod 600 {secret}`",
                )
            )
    free = shutil.disk_usage(path).free
    verdict = Verdict.OK if free >= LOW_DISK_BYTES else Verdict.WARN
    found.append(Finding("disk", verdict, f"{free // (1024 * 1024)} MiB free on {path}"))
    return found


def _enrollment(config: AgentConfig) -> tuple[list[Finding], Identity | None]:
    try:
        identity = Identity.load(config.state_dir)
    except NotEnrolled as exc:
        return [Finding("enrollment", Verdict.FAIL, str(exc))], None
    cert = x509.load_pem_x509_certificate(identity.tls.cert.read_bytes())
    days = (cert.not_valid_after_utc - datetime.now(UTC)).days
    verdict = Verdict.OK if days > CERT_WARN_DAYS else Verdict.WARN if days > 0 else Verdict.FAIL
    text = f"gateway {identity.gateway_id}, certificate valid for {days} more days"
    if verdict is not Verdict.OK:
        text += "; enroll again with a new token from the cloud"
    return [Finding("enrollment", verdict, text)], identity


def _database(config: AgentConfig) -> list[Finding]:
    path = config.state_dir / "agent.db"
    if not path.exists():
        return [Finding("database", Verdict.WARN, f"{path} does not exist yet (first start)")]
    try:
        store = Store(path)
    except StoreError as exc:
        return [Finding("database", Verdict.FAIL, str(exc))]
    try:
        check = store.integrity_check()
        applied = store.applied()
        depth = store.outbox.depth
        recovered = store.recovery
    finally:
        store.close()
    if recovered is not None:
        return [
            Finding(
                "database",
                Verdict.WARN,
                f"was damaged and set aside as {recovered.set_aside}; the agent recovered",
            )
        ]
    if check != "ok":
        return [Finding("database", Verdict.FAIL, f"integrity check: {check}")]
    return [
        Finding(
            "database",
            Verdict.OK,
            f"desired version {applied.version}, {depth} events waiting to be sent",
        )
    ]


def _broker(identity: Identity) -> list[Finding]:
    async def connect() -> float:
        started = time.monotonic()
        session = MqttSession(
            client_id=f"{identity.gateway_id}-doctor-{os.getpid()}",
            host=identity.broker_host,
            port=identity.broker_port,
            tls=identity.tls.context(),
        )
        await session.connect(timeout_s=BROKER_CHECK_TIMEOUT_S)
        await session.disconnect()
        return time.monotonic() - started

    where = f"{identity.broker_host}:{identity.broker_port}"
    try:
        elapsed = asyncio.run(connect())
    except (MqttError, OSError) as exc:
        return [
            Finding(
                "broker",
                Verdict.FAIL,
                f"{where}: {exc}; check the network, the "
                "broker, and that this gateway was not deleted in the cloud",
            )
        ]
    return [Finding("broker", Verdict.OK, f"{where}: TLS session in {elapsed * 1000:.0f} ms")]


def _keypad(config: AgentConfig) -> list[Finding]:
    port = config.keypad.port
    if port is None:
        return [Finding("keypad", Verdict.OK, "no keypad controller configured")]
    path = Path(port)
    if not path.exists():
        return [
            Finding(
                "keypad",
                Verdict.FAIL,
                f"{port} does not exist: plug in the keypad "
                "controller or fix [keypad] port in agent.toml",
            )
        ]
    if not os.access(path, os.R_OK | os.W_OK):
        return [
            Finding(
                "keypad",
                Verdict.FAIL,
                f"{port} is not readable and writable by this user: add it to the dialout group",
            )
        ]
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        is_tty = os.isatty(fd)
    finally:
        os.close(fd)
    if not is_tty:
        return [Finding("keypad", Verdict.WARN, f"{port} is not a serial device")]
    return [Finding("keypad", Verdict.OK, f"{port} is present and accessible")]


def _bluetooth(config: AgentConfig) -> list[Finding]:
    if config.ble.hci:
        return [Finding("bluetooth", Verdict.OK, f"bumble HCI transport {config.ble.hci}")]
    adapters = sorted(p.name for p in Path("/sys/class/bluetooth").glob("hci*"))
    if adapters:
        return [Finding("bluetooth", Verdict.OK, f"adapters: {', '.join(adapters)}")]
    return [
        Finding(
            "bluetooth",
            Verdict.WARN,
            "no Bluetooth adapter: Nuki locks cannot be "
            "reached (enable Bluetooth, or set [ble] hci to a bumble transport)",
        )
    ]


def _clock(config: AgentConfig) -> list[Finding]:
    if config.clock.assume_synchronized:
        return [Finding("clock", Verdict.OK, "assumed synchronised (clock.assume_synchronized)")]
    synced = system_clock_synchronized()
    now = Clock.utc(time.time()).isoformat(timespec="seconds")
    if synced:
        return [Finding("clock", Verdict.OK, f"synchronised ({now})")]
    what = "cannot tell whether" if synced is None else "the system says"
    return [
        Finding(
            "clock",
            Verdict.WARN,
            f"{what} the clock is not synchronised ({now}); "
            "enable systemd-timesyncd (timedatectl set-ntp true); until then codes are "
            f"decided by the [clock] untrusted = {config.clock.untrusted!r} policy",
        )
    ]


def diagnose(config: AgentConfig, *, broker: bool = True) -> list[Finding]:
    """Run every check."""
    findings = _state_dir(config)
    enrollment, identity = _enrollment(config)
    findings += enrollment
    findings += _database(config)
    if identity is not None and broker:
        findings += _broker(identity)
    checks: tuple[Callable[[AgentConfig], list[Finding]], ...] = (_keypad, _bluetooth, _clock)
    for check in checks:
        findings += check(config)
    return findings


def report(findings: list[Finding]) -> str:
    """The findings as aligned lines."""
    return "\n".join(f"{f.verdict.value:<4} {f.area:<11} {f.text}" for f in findings)
