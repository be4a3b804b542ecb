"""The `[nuki]` and `[ble]` tables of agent.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BleConfig(BaseModel):
    """The Bluetooth adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hci: str | None = Field(
        default=None,
        description="a bumble HCI transport (e.g. tcp-client:127.0.0.1:9001 or usb:0); "
        "unset: the system's BlueZ adapter through bleak",
    )


class NukiConfig(BaseModel):
    """Nuki locks driven over BLE."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    app_id: int = Field(
        default=0x4B534659, ge=0, le=0xFFFFFFFF, description="app id we pair with (u32)"
    )
    name: str = Field(
        default="Kasify Edge",
        min_length=1,
        max_length=32,
        description="authorization name shown in the Nuki app",
    )
    time_sync_interval_s: float = Field(
        default=12 * 3600.0, ge=60.0, description="UpdateTime this often (and at pairing)"
    )
    reachable_window_s: float = Field(
        default=120.0, gt=0, description="a lock is reachable if an advert came this recently"
    )
    linger_s: float = Field(
        default=1.0, ge=0, le=15.0, description="keep a link this long after the last operation"
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, le=60.0)
    scan_mode: str = Field(default="active", pattern="^(active|passive)$")
