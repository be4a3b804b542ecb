"""Bookings, their access codes, property codes, and online check-in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from cloud_api.deps import CurrentUser, PageDep, SessionDep
from cloud_api.errors import ERROR_RESPONSES, FORBIDDEN, described
from cloud_api.models import AccessCode, Booking, CodeStatus, User
from cloud_api.presenters import booking_public, code_public, guest_public
from cloud_api.schemas.bookings import (
    AccessCodeCreate,
    AccessCodePublic,
    AccessCodesList,
    AccessCodesPage,
    BookingCreate,
    BookingPublic,
    BookingsImport,
    BookingsImported,
    BookingsPage,
    BookingUpdate,
    PermanentCodeCreate,
)
from cloud_api.schemas.checkin import CheckinPublic, GuestCreate, GuestPublic
from cloud_api.services import access_codes as code_service
from cloud_api.services import bookings as service
from cloud_api.services import checkin as checkin_service
from cloud_api.services.code_views import code_extras
from sync_protocol.models import CodeKind

router = APIRouter(tags=["Bookings"], responses=ERROR_RESPONSES)
codes_router = APIRouter(tags=["AccessCodes"], responses=ERROR_RESPONSES)
checkin_router = APIRouter(tags=["Checkin"], responses=ERROR_RESPONSES)
CONFLICT = described(409, "The booking is cancelled, or no backup code is left")


def present_bookings(session: Session, user: User, bookings: list[Booking]) -> list[BookingPublic]:
    """Bookings with their active codes' per-lock state."""
    codes = [c for b in bookings for c in b.codes if c.status is CodeStatus.ACTIVE]
    extras = code_extras(session, codes, user)
    return [booking_public(b, extras) for b in bookings]


def present_codes(session: Session, user: User, codes: list[AccessCode]) -> list[AccessCodePublic]:
    """Codes with their per-lock state."""
    extras = code_extras(session, codes, user)
    return [code_public(c, extras.get(c.id)) for c in codes]


@router.get("/properties/{property_id}/bookings", response_model=BookingsPage)
def list_property_bookings(
    property_id: str, user: CurrentUser, session: SessionDep, paging: PageDep
) -> BookingsPage:
    """A property's bookings, latest check-in first."""
    rows, total = service.list_property_bookings(
        session, user, property_id, paging.page, paging.size
    )
    return BookingsPage(
        bookings=present_bookings(session, user, rows),
        page=paging.page,
        size=paging.size,
        total=total,
    )


@router.post(
    "/properties/{property_id}/bookings",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingPublic,
    responses=FORBIDDEN,
)
def create_booking(
    property_id: str, body: BookingCreate, user: CurrentUser, session: SessionDep
) -> BookingPublic:
    """Create a booking; its guest code is issued with it and sent to the property's gateways."""
    booking = service.create_booking(session, user, property_id, body)
    return present_bookings(session, user, [booking])[0]


@router.post(
    "/properties/{property_id}/bookings/import",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingsImported,
    responses=FORBIDDEN,
)
def import_bookings(
    property_id: str, body: BookingsImport, user: CurrentUser, session: SessionDep
) -> BookingsImported:
    """Create up to 100 bookings at once (a channel-manager sync, a property joining), each with
    its guest code; all or none. One change for the property's gateways, not one per booking."""
    bookings = service.import_bookings(session, user, property_id, body.bookings)
    return BookingsImported(bookings=present_bookings(session, user, bookings))


@router.get(
    "/properties/{property_id}/bookings/current",
    response_model=BookingPublic,
    responses=FORBIDDEN,
)
def current_booking(property_id: str, user: CurrentUser, session: SessionDep) -> BookingPublic:
    """The booking in progress right now (between check-in and check-out time); 404 if none."""
    booking = service.current_booking(session, user, property_id)
    return present_bookings(session, user, [booking])[0]


@router.get("/bookings", response_model=BookingsPage)
def list_bookings(user: CurrentUser, session: SessionDep, paging: PageDep) -> BookingsPage:
    """Bookings across every property where the caller may see bookings."""
    rows, total = service.list_bookings(session, user, paging.page, paging.size)
    return BookingsPage(
        bookings=present_bookings(session, user, rows),
        page=paging.page,
        size=paging.size,
        total=total,
    )


@router.get("/bookings/{booking_id}", response_model=BookingPublic)
def get_booking(booking_id: str, user: CurrentUser, session: SessionDep) -> BookingPublic:
    """A booking by id."""
    return present_bookings(session, user, [service.get_booking(session, user, booking_id)])[0]


@router.patch("/bookings/{booking_id}", response_model=BookingPublic, responses=FORBIDDEN)
def update_booking(
    booking_id: str, body: BookingUpdate, user: CurrentUser, session: SessionDep
) -> BookingPublic:
    """Update a booking: new dates move its codes, `status: cancelled` revokes them."""
    booking = service.update_booking(session, user, booking_id, body)
    return present_bookings(session, user, [booking])[0]


@codes_router.post(
    "/bookings/{booking_id}/access-codes",
    status_code=status.HTTP_201_CREATED,
    response_model=AccessCodePublic,
    responses={**FORBIDDEN, **CONFLICT},
)
def create_access_code(
    booking_id: str,
    user: CurrentUser,
    session: SessionDep,
    body: AccessCodeCreate | None = None,
) -> AccessCodePublic:
    """Issue a new guest code for a booking (by default replacing its active ones), or hand it a
    backup code from the property's pool (`kind: backup`)."""
    request = body or AccessCodeCreate()
    code = code_service.create_for_booking(
        session, user, booking_id, request.pin, request.replace_existing, CodeKind(request.kind)
    )
    return present_codes(session, user, [code])[0]


@codes_router.get("/bookings/{booking_id}/access-codes", response_model=AccessCodesList)
def list_access_codes(booking_id: str, user: CurrentUser, session: SessionDep) -> AccessCodesList:
    """Every access code of a booking, revoked ones included, newest first, with per-lock state."""
    codes = code_service.list_for_booking(session, user, booking_id)
    return AccessCodesList(access_codes=present_codes(session, user, codes))


@codes_router.get("/properties/{property_id}/access-codes", response_model=AccessCodesPage)
def list_property_codes(
    property_id: str,
    user: CurrentUser,
    session: SessionDep,
    paging: PageDep,
    kind: Annotated[CodeKind | None, Query(description="Only codes of this kind")] = None,
    code_status: Annotated[
        CodeStatus | None, Query(alias="status", description="Only active or revoked codes")
    ] = None,
) -> AccessCodesPage:
    """A property's codes of every kind (guest, crew, manager, backup), newest first."""
    codes, total = code_service.list_property_codes(
        session, user, property_id, kind, code_status, paging.page, paging.size
    )
    return AccessCodesPage(
        access_codes=present_codes(session, user, codes),
        page=paging.page,
        size=paging.size,
        total=total,
    )


@codes_router.post(
    "/properties/{property_id}/access-codes",
    status_code=status.HTTP_201_CREATED,
    response_model=AccessCodePublic,
    responses=FORBIDDEN,
)
def create_permanent_code(
    property_id: str, body: PermanentCodeCreate, user: CurrentUser, session: SessionDep
) -> AccessCodePublic:
    """Create a permanent manager code for an owner or manager (owners and managers only)."""
    code = code_service.create_permanent_code(
        session,
        user,
        property_id,
        holder_user_id=body.holder_user_id,
        label=body.label,
        pin=body.pin,
    )
    return present_codes(session, user, [code])[0]


@codes_router.get("/access-codes/{code_id}", response_model=AccessCodePublic)
def get_access_code(code_id: str, user: CurrentUser, session: SessionDep) -> AccessCodePublic:
    """An access code with its state on each lock."""
    return present_codes(session, user, [code_service.get_code(session, user, code_id)])[0]


@codes_router.delete(
    "/access-codes/{code_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=FORBIDDEN,
)
def revoke_access_code(code_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """Revoke an access code (idempotent); gateways drop it once they apply the new state."""
    code_service.revoke_code(session, user, code_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@checkin_router.get("/bookings/{booking_id}/checkin", response_model=CheckinPublic)
def get_checkin(booking_id: str, user: CurrentUser, session: SessionDep) -> CheckinPublic:
    """The check-in snapshot: times, guest registration, and the code once it is due."""
    snap = checkin_service.get_checkin(session, user, booking_id)
    code = present_codes(session, user, [snap.code])[0] if snap.code is not None else None
    return CheckinPublic(
        booking_id=snap.booking.id,
        property_id=snap.prop.id,
        property_name=snap.prop.name,
        guest_name=snap.booking.guest_name,
        timezone=snap.prop.timezone,
        check_in=snap.booking.check_in,
        check_out=snap.booking.check_out,
        check_in_at=snap.check_in_at,
        check_out_at=snap.check_out_at,
        registration_required=snap.prop.guest_registration_required,
        registration_complete=snap.registration_complete,
        guests_expected=snap.booking.guest_count,
        guests_registered=len(snap.guests),
        guests=[guest_public(g) for g in snap.guests],
        code_state=snap.code_state,
        access_code=code,
    )


@checkin_router.post(
    "/bookings/{booking_id}/checkin/guests",
    status_code=status.HTTP_201_CREATED,
    response_model=GuestPublic,
    responses={**FORBIDDEN, **described(409, "Cancelled, or every expected guest registered")},
)
def register_guest(
    booking_id: str, body: GuestCreate, user: CurrentUser, session: SessionDep
) -> GuestPublic:
    """Register a guest; when the last expected guest registers, a gated code is released."""
    return guest_public(checkin_service.register_guest(session, user, booking_id, body))
