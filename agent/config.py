"""Agent configuration: `/etc/kasify-agent/agent.toml`, overridden by `KASIFY_AGENT_*` variables.

An override names a key with `__` between table and key, e.g.
`KASIFY_AGENT_KEYPAD__PORT=/dev/ttyACM0` or `KASIFY_AGENT_STATE_DIR=/tmp/agent`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.locks.nuki.config import BleConfig, NukiConfig
from agent.locks.unifi.config import UnifiConfig

DEFAULT_PATH = Path("/etc/kasify-agent/agent.toml")
ENV_PREFIX = "KASIFY_AGENT_"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeypadConfig(_Section):
    """The door keypad controller on a serial port, and the strike relay it drives."""

    port: str | None = Field(default=None, description="serial device, e.g. /dev/ttyACM0")
    baudrate: int = Field(default=115200, gt=0)
    lock_ref: str = Field(default="keypad", min_length=1, max_length=128)
    relay: int = Field(default=0, ge=0, le=3)
    pulse_ms: int = Field(default=3000, ge=100, le=10_000)  # the controller caps pulses at 10 s


class MqttConfig(_Section):
    """The session with the broker (its address comes from the enrollment)."""

    keepalive_s: int = Field(default=30, ge=5, le=600)
    reported_interval_s: float = Field(default=300.0, ge=5, le=3600)


class ClockConfig(_Section):
    """How far to trust the system clock (a Pi has no real-time clock)."""

    untrusted: Literal["honour", "deny"] = Field(
        default="honour",
        description="time-limited codes while the clock is unconfirmed: honour them at the best "
        "known time, or deny them until the clock is confirmed",
    )
    assume_synchronized: bool = Field(
        default=False,
        description="treat the system clock as synchronised (hosts whose clock is kept by a "
        "hypervisor, where the kernel cannot tell)",
    )


class OutboxConfig(_Section):
    """The queue of events waiting for the broker."""

    max_events: int = Field(default=200_000, ge=1000, le=5_000_000)


class AgentConfig(_Section):
    """Everything the agent reads at start-up."""

    state_dir: Path = Path("/var/lib/kasify-agent")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    keypad: KeypadConfig = KeypadConfig()
    mqtt: MqttConfig = MqttConfig()
    clock: ClockConfig = ClockConfig()
    outbox: OutboxConfig = OutboxConfig()
    ble: BleConfig = BleConfig()
    nuki: NukiConfig = NukiConfig()
    unifi: UnifiConfig = UnifiConfig()


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {part!r} is a value, not a table")
            node = child
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Read the TOML file (if it exists, or if named explicitly) and apply env overrides."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    source = path or DEFAULT_PATH
    if path is not None or source.exists():
        try:
            data = tomllib.loads(source.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read: {exc}") from None
    data = _merge(data, _env_overrides(environ))
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            got = error.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            problems.append(f"{key}: {error['msg']}{shown}")
        raise ConfigError(
            f"{source} (with {ENV_PREFIX}* overrides): " + "; ".join(problems)
        ) from None
