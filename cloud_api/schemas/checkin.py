"""Online check-in: the snapshot a booking's check-in page shows, and guest registration."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictStr, StringConstraints
from pydantic_core import PydanticCustomError

from cloud_api.schemas.bookings import AccessCodePublic
from cloud_api.schemas.common import Email, Phone, RequestModel, ResponseModel, require_str

EARLIEST_BIRTH = date(1900, 1, 1)


class DocumentType(StrEnum):
    """An identity document accepted for guest registration."""

    PASSPORT = "passport"
    ID_CARD = "id_card"
    RESIDENCE_PERMIT = "residence_permit"
    DRIVING_LICENCE = "driving_licence"
    OTHER = "other"


def _past(value: date) -> date:
    if not EARLIEST_BIRTH <= value < date.today():
        raise PydanticCustomError(
            "birth_date", f"must be a past date after {EARLIEST_BIRTH}, like '1985-04-12'"
        )
    return value


BirthDate = Annotated[date, BeforeValidator(require_str("1985-04-12")), AfterValidator(_past)]
CountryCode = Annotated[
    StrictStr,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    Field(description="ISO 3166-1 alpha-2 country code in capitals, e.g. ES"),
]


class GuestCreate(RequestModel):
    """A guest registering on a booking, with an identity document."""

    first_name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=80)]
    last_name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=120)]
    document_type: DocumentType
    document_number: Annotated[
        StrictStr, StringConstraints(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9-]+$")
    ] = Field(description="Letters, digits and '-'")
    nationality: CountryCode
    birth_date: BirthDate
    email: Email | None = None
    phone: Phone | None = None


class GuestPublic(ResponseModel):
    """A registered guest."""

    id: str
    booking_id: str
    first_name: str
    last_name: str
    document_type: DocumentType
    document_number: str
    nationality: str
    birth_date: date
    email: str | None
    phone: str | None
    created_at: datetime


CodeState = Literal["awaiting_registration", "scheduled", "active", "ended", "none"]


class CheckinPublic(ResponseModel):
    """Everything a guest's check-in needs: times, registration, and the code once it is due."""

    booking_id: str
    property_id: str
    property_name: str
    guest_name: str
    timezone: str
    check_in: date = Field(alias="from")
    check_out: date = Field(alias="to")
    check_in_at: datetime = Field(description="Check-in time at the property, in UTC")
    check_out_at: datetime = Field(description="Check-out time at the property, in UTC")
    registration_required: bool
    registration_complete: bool
    guests_expected: int
    guests_registered: int
    guests: list[GuestPublic]
    code_state: CodeState = Field(
        description="awaiting_registration until the guests registered (when required), then "
        "scheduled, active or ended; none without an active code"
    )
    access_code: AccessCodePublic | None = Field(
        description="The guest code (or a backup code); null while registration is pending"
    )
