"""Bookings: create (with the guest code), list, read, update, the current one."""

from __future__ import annotations

from datetime import datetime

from pydantic_core import PydanticCustomError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from cloud_api.codes import code_window, local_date
from cloud_api.db import new_id, utcnow
from cloud_api.errors import InvalidInput, NotFound
from cloud_api.models import Booking, BookingStatus, Guest, Property, User
from cloud_api.schemas.bookings import BookingCreate, BookingUpdate, check_dates
from cloud_api.services.access import Permission, require_property, visible_property_ids
from cloud_api.services.access_codes import (
    active_booking_codes,
    active_guest_codes,
    issue_guest_code,
    issue_guest_codes,
    load_booking,
    revoke,
    rewindow_booking,
)
from cloud_api.services.changes import property_changed

DATE_FIELDS = frozenset({"check_in", "check_out"})


def create_booking(session: Session, user: User, property_id: str, data: BookingCreate) -> Booking:
    """A confirmed booking and its guest code, in one transaction."""
    prop = require_property(session, user, property_id, Permission.MANAGE, lock=True)
    booking = Booking(
        id=new_id(),
        property_id=prop.id,
        guest_name=data.guest_name,
        guest_email=data.guest_email,
        guest_phone=data.guest_phone,
        channel_id=data.channel_id,
        check_in=data.check_in,
        check_out=data.check_out,
        guest_count=data.guest_count,
        status=BookingStatus.CONFIRMED,
        codes=[],  # a new booking has no codes: adding one needs no query
    )
    session.add(booking)
    issue_guest_code(session, prop, booking)
    property_changed(session, prop.id)
    session.commit()
    return booking


def import_bookings(
    session: Session, user: User, property_id: str, items: list[BookingCreate]
) -> list[Booking]:
    """Create many confirmed bookings with their guest codes in one transaction (all or none)."""
    prop = require_property(session, user, property_id, Permission.MANAGE, lock=True)
    bookings = [
        Booking(
            id=new_id(),
            property_id=prop.id,
            guest_name=data.guest_name,
            guest_email=data.guest_email,
            guest_phone=data.guest_phone,
            channel_id=data.channel_id,
            check_in=data.check_in,
            check_out=data.check_out,
            guest_count=data.guest_count,
            status=BookingStatus.CONFIRMED,
            codes=[],
        )
        for data in items
    ]
    issue_guest_codes(session, prop, bookings)
    session.add_all(bookings)
    property_changed(session, prop.id)
    session.commit()
    return bookings


def _page(
    session: Session, query: Select[Booking], page: int, size: int
) -> tuple[list[Booking], int]:
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(Booking.codes))
        .order_by(Booking.check_in.desc(), Booking.created_at.desc(), Booking.id)
        .offset(page * size)
        .limit(size)
    ).all()
    return list(rows), total


def list_property_bookings(
    session: Session, user: User, property_id: str, page: int, size: int
) -> tuple[list[Booking], int]:
    """A property's bookings, latest check-in first."""
    require_property(session, user, property_id)
    return _page(session, select(Booking).where(Booking.property_id == property_id), page, size)


def list_bookings(session: Session, user: User, page: int, size: int) -> tuple[list[Booking], int]:
    """Bookings across every property where the caller may see bookings."""
    query = select(Booking).where(Booking.property_id.in_(visible_property_ids(user)))
    return _page(session, query, page, size)


def get_booking(session: Session, user: User, booking_id: str) -> Booking:
    """One booking the caller may see."""
    return load_booking(session, user, booking_id, Permission.VIEW)[1]


def current_booking(session: Session, user: User, property_id: str) -> Booking:
    """The confirmed booking whose stay (check-in to check-out time, no buffers) holds now."""
    prop = require_property(session, user, property_id)
    now = utcnow()
    today = local_date(now, prop.timezone)
    candidates = session.scalars(
        select(Booking)
        .where(
            Booking.property_id == prop.id,
            Booking.status == BookingStatus.CONFIRMED,
            Booking.check_in <= today,
            Booking.check_out >= today,
        )
        .order_by(Booking.check_in, Booking.id)
    ).all()
    for booking in candidates:
        starts, ends = stay(prop, booking)
        if starts <= now < ends:
            return booking
    raise NotFound(
        f"no booking is in progress at property {property_id} right now; list upcoming ones "
        f"with GET /properties/{property_id}/calendar"
    )


def stay(prop: Property, booking: Booking) -> tuple[datetime, datetime]:
    """Check-in and check-out instants (UTC) of a booking, without the code buffers."""
    return code_window(
        timezone=prop.timezone,
        check_in=booking.check_in,
        check_out=booking.check_out,
        check_in_time=prop.check_in_time,
        check_out_time=prop.check_out_time,
        early_minutes=0,
        late_minutes=0,
    )


def registered_count(session: Session, booking_id: str) -> int:
    """How many guests registered on a booking."""
    return session.scalar(select(func.count()).where(Guest.booking_id == booking_id)) or 0


def update_booking(session: Session, user: User, booking_id: str, data: BookingUpdate) -> Booking:
    """Apply changes: new dates move the codes, cancelling revokes them."""
    prop, booking = load_booking(session, user, booking_id, Permission.MANAGE)
    changes = data.changes()
    check_in = changes.get("check_in", booking.check_in)
    check_out = changes.get("check_out", booking.check_out)
    if DATE_FIELDS & changes.keys():
        try:
            check_dates(check_in, check_out)
        except PydanticCustomError as exc:
            field = "to" if "check_out" in changes else "from"
            raise InvalidInput(field, exc.message()) from None
    now = utcnow()
    dates_moved = (check_in, check_out) != (booking.check_in, booking.check_out)
    old_status = booking.status
    for field, value in changes.items():
        setattr(booking, field, value)
    booking.updated_at = now
    affects_doors = False
    if (
        "guest_count" in changes
        and booking.registration_completed_at is None
        and registered_count(session, booking.id) >= booking.guest_count
    ):
        booking.registration_completed_at = now
        affects_doors = True
    if booking.status is BookingStatus.CANCELLED and old_status is not BookingStatus.CANCELLED:
        for code in active_booking_codes(booking):
            revoke(code, now)
        affects_doors = True
    elif booking.status is BookingStatus.CONFIRMED:
        session.flush()
        if old_status is BookingStatus.CANCELLED and not active_guest_codes(booking):
            issue_guest_code(session, prop, booking)
            affects_doors = True
        elif dates_moved:
            rewindow_booking(session, prop, booking, now)
            affects_doors = True
    if affects_doors:
        property_changed(session, prop.id)
    session.commit()
    return booking


def upcoming_bookings(
    session: Session, user: User, property_id: str, limit: int
) -> tuple[list[Booking], int]:
    """A property's confirmed bookings not over yet (checking out today or later, in the
    property's zone), soonest check-in first, at most `limit`, and how many there are."""
    prop = require_property(session, user, property_id)
    today = local_date(utcnow(), prop.timezone)
    query = select(Booking).where(
        Booking.property_id == prop.id,
        Booking.status == BookingStatus.CONFIRMED,
        Booking.check_out >= today,
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(Booking.codes))
        .order_by(Booking.check_in, Booking.created_at, Booking.id)
        .limit(limit)
    ).all()
    return list(rows), total
