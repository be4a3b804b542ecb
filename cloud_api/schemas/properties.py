"""Properties: time zone, default check-in/out times and code buffers."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

from pydantic import Field, StrictBool, StrictInt

from cloud_api.models import Role
from cloud_api.schemas.common import (
    BufferMinutes,
    ClockTime,
    ClockTimeOut,
    Name,
    Page,
    RequestModel,
    ResponseModel,
    TimeZone,
    UpdateModel,
)

DEFAULT_CHECK_IN = time(15, 0)
DEFAULT_CHECK_OUT = time(11, 0)
MAX_BACKUP_CODES = 5
BackupCount = Annotated[
    StrictInt,
    Field(
        ge=0,
        le=MAX_BACKUP_CODES,
        description="Backup codes kept on the locks, handed out when a guest code fails to set",
    ),
]
RegistrationRequired = Annotated[
    StrictBool,
    Field(description="Guest codes reach the locks only once the booking's guests registered"),
]


class PropertyCreate(RequestModel):
    """A new property; the caller becomes its owner."""

    name: Name
    timezone: TimeZone = Field(description="IANA time zone of the property, e.g. Europe/Madrid")
    check_in_time: ClockTime = DEFAULT_CHECK_IN
    check_out_time: ClockTime = DEFAULT_CHECK_OUT
    early_check_in_buffer_minutes: BufferMinutes = Field(
        0, description="Guest codes start this many minutes before check-in"
    )
    late_check_out_buffer_minutes: BufferMinutes = Field(
        0, description="Guest codes end this many minutes after check-out"
    )
    guest_registration_required: RegistrationRequired = False
    backup_code_count: BackupCount = 2


class PropertyUpdate(UpdateModel):
    """Changes to a property; guest code windows follow time, zone and buffer changes."""

    name: Name | None = None
    timezone: TimeZone | None = None
    check_in_time: ClockTime | None = None
    check_out_time: ClockTime | None = None
    early_check_in_buffer_minutes: BufferMinutes | None = None
    late_check_out_buffer_minutes: BufferMinutes | None = None
    guest_registration_required: RegistrationRequired | None = None
    backup_code_count: BackupCount | None = None


class PropertyPublic(ResponseModel):
    """A property and the caller's role there."""

    id: str
    name: str
    timezone: str
    check_in_time: ClockTimeOut
    check_out_time: ClockTimeOut
    early_check_in_buffer_minutes: int
    late_check_out_buffer_minutes: int
    guest_registration_required: bool
    backup_code_count: int
    role: Role
    created_at: datetime
    updated_at: datetime


class PropertiesPage(Page):
    """A page of properties."""

    properties: list[PropertyPublic]
