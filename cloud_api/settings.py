"""The cloud's settings, read from `KASIFY_*` environment variables."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "KASIFY_"
SUPPORTED_DRIVERS = ("sqlite", "postgresql+psycopg")


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable and the fix."""


class Settings(BaseSettings):
    """Everything the cloud needs to know about where it runs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    data_dir: Path = Path("./var/cloud")
    database_url: str | None = None
    broker_host: str = Field("127.0.0.1", min_length=1, max_length=253)
    broker_port: int = Field(8883, ge=1, le=65535)
    broker_public_host: str | None = Field(None, min_length=1, max_length=253)
    broker_public_port: int | None = Field(None, ge=1, le=65535)
    mqtt_enabled: bool = True
    # `kasify-cloud serve` also ingests what gateways publish, unless workers do it on their own.
    serve_ingest: bool = True
    mqtt_client_id: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    # How long the broker keeps this worker's session (and queues events for it) while it is away.
    mqtt_session_expiry_s: int = Field(7 * 24 * 3600, ge=0, le=30 * 24 * 3600)
    sync_horizon_days: int = Field(14, ge=1, le=365)
    enrollment_token_ttl_hours: int = Field(24, ge=1, le=24 * 30)
    api_token_ttl_days: int = Field(30, ge=1, le=365)
    invitation_ttl_days: int = Field(7, ge=1, le=90)
    log_format: Literal["text", "json"] = "text"
    broker_reload_command: str | None = None
    public_url: str = "http://127.0.0.1:8000"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            url = make_url(value.strip())
        except ArgumentError:
            raise ValueError(
                "is not a database URL; use sqlite:///path/to/cloud.db or "
                "postgresql+psycopg://user@host:5432/dbname"
            ) from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"driver {url.drivername!r} is not supported; use one of "
                f"{', '.join(SUPPORTED_DRIVERS)} (PostgreSQL goes through psycopg 3: "
                "postgresql+psycopg://...)"
            )
        if url.drivername == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError(
                "an SQLite URL needs a file path, e.g. sqlite:////var/lib/kasify/cloud.db"
            )
        return value.strip()

    @field_validator("broker_reload_command")
    @classmethod
    def _check_reload_command(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split into arguments ({exc}); check the quoting") from None
        if not argv:
            return None
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "must be the API's base URL as agents reach it, e.g. https://cloud.example.com"
            )
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value

    @property
    def db_url(self) -> str:
        """The database URL: the configured one, or an SQLite file in the data directory."""
        if self.database_url is not None:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cloud.db').resolve()}"

    @property
    def advertised_broker(self) -> tuple[str, int]:
        """Where enrolling agents are told to connect."""
        return (
            self.broker_public_host or self.broker_host,
            self.broker_public_port or self.broker_port,
        )

    @property
    def client_id(self) -> str:
        """This worker's MQTT client id: stable, so the broker keeps its session while away."""
        if self.mqtt_client_id:
            return self.mqtt_client_id
        host = "".join(c for c in socket.gethostname().split(".")[0] if c.isalnum() or c in "-_")
        return f"cloud-{host[:48] or 'host'}"

    @property
    def reload_argv(self) -> list[str] | None:
        """The broker reload command as an argument vector (run without a shell)."""
        return shlex.split(self.broker_reload_command) if self.broker_reload_command else None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = ENV_PREFIX + field.upper()
            given = error.get("input")
            shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}{shown}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
