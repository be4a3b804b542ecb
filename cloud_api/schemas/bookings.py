"""Bookings and their access codes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from cloud_api.codes import MAX_PIN_LENGTH, MIN_PIN_LENGTH
from cloud_api.models import BookingStatus, CodeStatus
from cloud_api.schemas.common import (
    Email,
    IsoDate,
    Name,
    Page,
    Phone,
    RequestModel,
    ResponseModel,
    UpdateModel,
)
from sync_protocol.models import CodeKind, DeliveryState

ChannelId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
GuestCount = Annotated[StrictInt, Field(ge=1, le=50, description="Guests expected, 1 to 50")]
PIN_DESCRIPTION = (
    "Digits only. It must suit every lock of the property: Nuki Keypad: exactly 6 digits 1-9, "
    "not starting with 12; UniFi readers: 4-8 digits; the Kasify keypad: 4-12 digits; never one "
    "repeated digit or a straight run. Omit it to get a generated one."
)


def _check_pin(pin: str) -> str:
    if not (pin.isascii() and pin.isdigit()) or not MIN_PIN_LENGTH <= len(pin) <= MAX_PIN_LENGTH:
        raise PydanticCustomError(
            "pin",
            f"breaks the rule: a PIN is {MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} digits (0-9), "
            f"got {len(pin)} characters",
        )
    return pin


Pin = Annotated[StrictStr, AfterValidator(_check_pin), Field(description=PIN_DESCRIPTION)]


def check_dates(check_in: date, check_out: date) -> None:
    """Raise unless `to` is after `from`."""
    if check_out <= check_in:
        raise PydanticCustomError(
            "date_order",
            f"to ({check_out}) must be after from ({check_in}); a booking lasts at least a night",
        )


class BookingCreate(RequestModel):
    """A new confirmed booking; its guest code is issued with it."""

    guest_name: Name
    guest_email: Email | None = None
    guest_phone: Phone | None = None
    channel_id: ChannelId | None = None
    check_in: IsoDate = Field(alias="from", description="Check-in date at the property")
    check_out: IsoDate = Field(alias="to", description="Check-out date at the property")
    guest_count: GuestCount = 1

    @field_validator("check_out")
    @classmethod
    def _after_check_in(cls, check_out: date, info: ValidationInfo) -> date:
        check_in = info.data.get("check_in")
        if isinstance(check_in, date):
            check_dates(check_in, check_out)
        return check_out


class BookingUpdate(UpdateModel):
    """Changes to a booking: new dates move its codes, `cancelled` revokes them."""

    guest_name: Name | None = None
    guest_email: Email | None = None
    guest_phone: Phone | None = None
    channel_id: ChannelId | None = None
    check_in: IsoDate | None = Field(None, alias="from")
    check_out: IsoDate | None = Field(None, alias="to")
    guest_count: GuestCount | None = None
    status: BookingStatus | None = None

    nullable: ClassVar[frozenset[str]] = frozenset({"guest_email", "guest_phone", "channel_id"})


class CodeLockState(ResponseModel):
    """A code's state on one lock of its property."""

    lock_id: str
    lock_name: str
    state: DeliveryState = Field(
        description="unset, setting, set, removing or failed as the lock's gateway reported it; "
        "unknown while the gateway is offline or the lock unreachable"
    )
    reported_state: DeliveryState | None = Field(description="The last reported state")
    error: str | None
    updated_at: datetime | None = Field(description="When the gateway reported this state")
    stale: bool = Field(description="The gateway is offline or the lock unreachable")


class AccessCodePublic(ResponseModel):
    """An access code, its window (UTC; none means permanent) and its state on each lock."""

    id: str
    property_id: str
    booking_id: str | None
    task_id: str | None
    holder_user_id: str | None
    kind: CodeKind
    label: str
    pin: str | None = Field(description="Hidden (null) for callers who may not know it")
    starts_at: datetime | None
    ends_at: datetime | None
    status: CodeStatus
    awaiting_registration: bool = Field(
        description="Held back from the locks until the booking's guests have registered"
    )
    locks: list[CodeLockState]
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None
    handed_out_at: datetime | None = Field(description="When a backup code went to a booking")


class AccessCodeCreate(RequestModel):
    """A new guest code for a booking (a chosen PIN or a generated one), or a backup code."""

    kind: Literal[CodeKind.GUEST, CodeKind.BACKUP] = Field(
        CodeKind.GUEST,
        description="guest: a new guest code; backup: hand the booking a backup code from the "
        "property's pool (already on the locks)",
    )
    pin: Pin | None = None
    replace_existing: StrictBool = Field(
        True, description="Revoke the booking's active guest codes first"
    )


class PermanentCodeCreate(RequestModel):
    """A permanent manager code for an owner or manager of the property."""

    kind: Literal[CodeKind.MANAGER] = CodeKind.MANAGER
    holder_user_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)] | None = (
        Field(None, description="An owner or manager of the property; the caller by default")
    )
    label: Annotated[StrictStr, StringConstraints(max_length=40)] = ""
    pin: Pin | None = None


class AccessCodesList(ResponseModel):
    """A booking's access codes, newest first."""

    access_codes: list[AccessCodePublic]


class AccessCodesPage(Page):
    """A page of a property's access codes, newest first."""

    access_codes: list[AccessCodePublic]


class BookingPublic(ResponseModel):
    """A booking with its active access codes."""

    id: str
    property_id: str
    guest_name: str
    guest_email: str | None
    guest_phone: str | None
    channel_id: str | None
    check_in: date = Field(alias="from")
    check_out: date = Field(alias="to")
    status: BookingStatus
    guest_count: int
    registration_completed_at: datetime | None
    access_codes: list[AccessCodePublic] = Field(
        description="Active codes: guest codes, and a backup code if one was handed out"
    )
    created_at: datetime
    updated_at: datetime


MAX_IMPORT = 100


class BookingsImport(RequestModel):
    """Bookings to create together (a channel-manager sync, a property joining): all or none."""

    bookings: list[BookingCreate] = Field(min_length=1, max_length=MAX_IMPORT)


class BookingsImported(ResponseModel):
    """The bookings created, in the order given."""

    bookings: list[BookingPublic]


class BookingsPage(Page):
    """A page of bookings."""

    bookings: list[BookingPublic]
