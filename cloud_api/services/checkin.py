"""Online check-in: the snapshot of a booking and guest registration, which can gate its code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.errors import Conflict
from cloud_api.models import AccessCode, Booking, BookingStatus, Guest, Property, User
from cloud_api.schemas.checkin import CodeState, GuestCreate
from cloud_api.services.access import Permission
from cloud_api.services.access_codes import active_booking_codes, load_booking
from cloud_api.services.bookings import stay
from cloud_api.services.changes import property_changed
from cloud_api.services.code_views import awaiting_registration
from sync_protocol.models import CodeKind


@dataclass(frozen=True, slots=True)
class Checkin:
    """A booking's check-in state."""

    prop: Property
    booking: Booking
    check_in_at: datetime
    check_out_at: datetime
    guests: list[Guest]
    code: AccessCode | None
    code_state: CodeState

    @property
    def registration_complete(self) -> bool:
        """Whether enough guests registered (or registration was completed earlier)."""
        return self.booking.registration_completed_at is not None


def _guests(session: Session, booking_id: str) -> list[Guest]:
    return list(
        session.scalars(
            select(Guest).where(Guest.booking_id == booking_id).order_by(Guest.created_at, Guest.id)
        )
    )


def _code_state(
    prop: Property, booking: Booking, now: datetime
) -> tuple[AccessCode | None, CodeState]:
    codes = active_booking_codes(booking)
    # A backup code handed out replaces a guest code that could not be set.
    code = next((c for c in codes if c.kind is CodeKind.BACKUP), None) or next(iter(codes), None)
    if code is None:
        return None, "none"
    if awaiting_registration(prop, booking, code.kind):
        return None, "awaiting_registration"
    if code.ends_at is not None and code.ends_at <= now:
        return code, "ended"
    if code.starts_at is not None and code.starts_at > now:
        return code, "scheduled"
    return code, "active"


def get_checkin(session: Session, user: User, booking_id: str) -> Checkin:
    """The check-in snapshot of a booking."""
    prop, booking = load_booking(session, user, booking_id, Permission.VIEW)
    check_in_at, check_out_at = stay(prop, booking)
    code, state = _code_state(prop, booking, utcnow())
    guests = _guests(session, booking.id)
    return Checkin(prop, booking, check_in_at, check_out_at, guests, code, state)


def register_guest(session: Session, user: User, booking_id: str, data: GuestCreate) -> Guest:
    """Register one guest; once every expected guest is registered the guest code is released to
    the locks (when the property requires registration)."""
    prop, booking = load_booking(session, user, booking_id, Permission.OPERATE)
    if booking.status is BookingStatus.CANCELLED:
        raise Conflict(f"booking {booking_id} is cancelled; guests cannot register on it")
    registered = len(_guests(session, booking.id))
    if registered >= booking.guest_count:
        raise Conflict(
            f"booking {booking_id} already has {registered} of {booking.guest_count} guests "
            f"registered; raise guestCount with PATCH /bookings/{booking_id} to add more"
        )
    guest = Guest(
        booking_id=booking.id,
        first_name=data.first_name,
        last_name=data.last_name,
        document_type=data.document_type.value,
        document_number=data.document_number.upper(),
        nationality=data.nationality,
        birth_date=data.birth_date,
        email=data.email,
        phone=data.phone,
        registered_by=user.id,
    )
    session.add(guest)
    now = utcnow()
    if registered + 1 >= booking.guest_count and booking.registration_completed_at is None:
        booking.registration_completed_at = now
        booking.updated_at = now
        if prop.guest_registration_required:
            property_changed(session, prop.id)
    session.commit()
    return guest
