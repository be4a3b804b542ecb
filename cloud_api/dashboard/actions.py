"""The dashboard's forms: bookings, codes, remote lock actions, new gateways.

Each form posts here, runs the same service as the API, and answers with a redirect to the page
it came from carrying a message (post/redirect/get), or the page again with what to fix. Actions
that lock people out or open doors ask for confirmation: the script asks in the browser, and the
server asks on its own page when the form arrives without `confirm=yes`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from cloud_api.context import AppContext
from cloud_api.dashboard.pages import gateways_page, property_page, read_form
from cloud_api.dashboard.render import page
from cloud_api.dashboard.routing import DashboardRoute, error_page, see_other
from cloud_api.dashboard.session import (
    Flash,
    Viewer,
    ViewerDep,
    check_csrf,
    get_viewer,
    set_flash,
)
from cloud_api.dashboard.views import BookingForm
from cloud_api.dashboard.words import FIELDS, say
from cloud_api.deps import CtxDep, SessionDep
from cloud_api.errors import InvalidInput, ServiceError
from cloud_api.models import BookingStatus, CommandState
from cloud_api.schemas.bookings import BookingCreate, BookingUpdate
from cloud_api.schemas.gateways import GatewayCreate
from cloud_api.services import access_codes as code_service
from cloud_api.services import bookings as booking_service
from cloud_api.services import gateways as gateway_service
from cloud_api.services.access import Permission
from cloud_api.services.lock_actions import run_lock_action
from cloud_api.services.smartlocks import load_lock
from sync_protocol.models import CodeKind

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

LOCK_ACTION_WAIT_S = 5.0  # as the API: a Nuki action over BLE takes 2-4 s
BOOKING_FIELDS = ("guestName", "guestCount", "from", "to", "guestEmail", "guestPhone")
PAST = {"unlock": "unlocked", "lock": "locked"}
FORM_MESSAGES = {
    "guestName": "Enter the guest's name (up to 120 characters).",
    "guestCount": "Enter the number of guests, from 1 to 50.",
    "from": "Enter the check-in date.",
    "to": "Enter the check-out date.",
    "guestEmail": "Enter an email address like ana@example.com, or leave it empty.",
    "guestPhone": "Enter a phone number (digits, spaces, + and -), or leave it empty.",
}
DATE_ORDER = "Check-out must be after check-in: a booking lasts at least one night."


def checked_form(viewer: ViewerDep, form: Annotated[FormData, Depends(read_form)]) -> FormData:
    """The posted form, once its CSRF token proved it came from this session's page."""
    check_csrf(viewer, form)
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def text(form: FormData, name: str) -> str:
    """A form field as stripped text ('' when missing or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def confirmed(form: FormData) -> bool:
    """Whether the user confirmed (in the browser, or on the server's confirmation page)."""
    return text(form, "confirm") == "yes"


def confirm_page(
    request: Request, viewer: Viewer, form: FormData, *, question: str, button: str, back: str
) -> Response:
    """Ask before doing it; the form posts the same fields again with confirm=yes."""
    fields = [(k, v) for k, v in form.multi_items() if k != "confirm" and isinstance(v, str)]
    return page(
        request,
        "confirm.html",
        viewer=viewer,
        question=question,
        button=button,
        action=request.url.path,
        fields=fields,
        back=back,
    )


def property_url(property_id: str, anchor: str = "") -> str:
    """The property page (at an element)."""
    return f"/app/properties/{quote(property_id, safe='')}" + (f"#{anchor}" if anchor else "")


def done(request: Request, url: str, message: str, tone: str = "ok") -> Response:
    """Redirect with a message for the next page."""
    response = see_other(url)
    set_flash(request, response, Flash(message, tone))
    return response


def field_messages(exc: ValidationError, messages: dict[str, str]) -> dict[str, str]:
    """Per form field, the first problem in `messages`' words (else pydantic's own)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str((error.get("loc") or ("_",))[0])
        errors.setdefault(field, messages.get(field, str(error.get("msg", "is not valid"))))
    return errors


def form_errors(exc: ValidationError) -> dict[str, str]:
    """Per-field messages for the booking form, in words."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = error.get("loc") or ("_",)
        field = str(loc[0])
        if error.get("type") == "date_order":
            message = DATE_ORDER
        elif error.get("type") in ("date_range", "email", "pin"):
            message = f"{FIELDS.get(field, field)} {error.get('msg', '')}."
        else:
            message = FORM_MESSAGES.get(field, str(error.get("msg", "is not valid")))
        errors.setdefault(field, message)
    return errors


def booking_body(values: dict[str, str]) -> dict[str, object]:
    """The API's booking body from the form's text fields (empty optional fields left out)."""
    count = values["guestCount"] or "1"
    body: dict[str, object] = {
        "guestName": values["guestName"],
        "from": values["from"],
        "to": values["to"],
        "guestCount": int(count) if count.isdigit() and len(count) < 4 else count,
    }
    for optional in ("guestEmail", "guestPhone"):
        if values[optional]:
            body[optional] = values[optional]
    return body


@router.post("/app/properties/{property_id}/bookings")
def create_booking(
    property_id: str,
    request: Request,
    viewer: ViewerDep,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """Create a booking with its guest code; on a mistake, the form again with what to fix."""
    values = {name: text(form, name) for name in BOOKING_FIELDS}
    try:
        data = BookingCreate.model_validate(booking_body(values))
    except ValidationError as exc:
        return _booking_form_again(request, session, viewer, property_id, values, form_errors(exc))
    try:
        booking = booking_service.create_booking(session, viewer.user, property_id, data)
    except InvalidInput as exc:
        field = exc.field if exc.field in values else "_"
        message = DATE_ORDER if "must be after" in exc.message else say(exc)
        session.rollback()
        return _booking_form_again(request, session, viewer, property_id, values, {field: message})
    except ServiceError as exc:
        session.rollback()
        return done(request, property_url(property_id), say(exc, "this property"), "error")
    code = next((c for c in booking.codes if c.kind is CodeKind.GUEST), None)
    message = f"Booking for {booking.guest_name} created."
    if code is not None:
        message += " The guest code is on its way to the doors."
    return done(request, property_url(property_id, f"booking-{booking.id}"), message)


def _booking_form_again(
    request: Request,
    session: Session,
    viewer: Viewer,
    property_id: str,
    values: dict[str, str],
    errors: dict[str, str],
) -> Response:
    return property_page(
        request, session, viewer, property_id, BookingForm(values, errors), status_code=422
    )


def _booking_property(session: Session, viewer: Viewer, booking_id: str) -> str:
    """The property of a booking the viewer may see (404 otherwise)."""
    return booking_service.get_booking(session, viewer.user, booking_id).property_id


@router.post("/app/bookings/{booking_id}/dates")
def change_dates(
    booking_id: str, request: Request, viewer: ViewerDep, form: CheckedForm, session: SessionDep
) -> Response:
    """Move a booking; its codes follow the new dates."""
    property_id = _booking_property(session, viewer, booking_id)
    back = property_url(property_id, f"booking-{booking_id}")
    try:
        data = BookingUpdate.model_validate({"from": text(form, "from"), "to": text(form, "to")})
        booking = booking_service.update_booking(session, viewer.user, booking_id, data)
    except ValidationError as exc:
        errors = form_errors(exc)
        return done(request, back, " ".join(dict.fromkeys(errors.values())), "error")
    except ServiceError as exc:
        session.rollback()
        message = DATE_ORDER if "must be after" in exc.detail else say(exc, "this booking")
        return done(request, back, message, "error")
    return done(
        request, back, f"Dates of {booking.guest_name} changed. The guest code moves with them."
    )


@router.post("/app/bookings/{booking_id}/cancel")
def cancel_booking(
    booking_id: str, request: Request, viewer: ViewerDep, form: CheckedForm, session: SessionDep
) -> Response:
    """Cancel a booking: its codes stop working."""
    property_id = _booking_property(session, viewer, booking_id)
    back = property_url(property_id)
    if not confirmed(form):
        return confirm_page(
            request,
            viewer,
            form,
            question="Cancel this booking? Its codes stop opening the doors.",
            button="Cancel the booking",
            back=back,
        )
    try:
        data = BookingUpdate.model_validate({"status": BookingStatus.CANCELLED.value})
        booking = booking_service.update_booking(session, viewer.user, booking_id, data)
    except ServiceError as exc:
        session.rollback()
        return done(request, back, say(exc, "this booking"), "error")
    return done(
        request, back, f"Booking of {booking.guest_name} cancelled. Its codes stop working."
    )


@router.post("/app/bookings/{booking_id}/code")
def reissue_code(
    booking_id: str, request: Request, viewer: ViewerDep, form: CheckedForm, session: SessionDep
) -> Response:
    """Issue a new guest code for a booking; its current one stops working."""
    property_id = _booking_property(session, viewer, booking_id)
    back = property_url(property_id, f"booking-{booking_id}")
    if not confirmed(form):
        return confirm_page(
            request,
            viewer,
            form,
            question="Issue a new guest code? The current one stops opening the doors.",
            button="Issue a new code",
            back=back,
        )
    try:
        code_service.create_for_booking(
            session, viewer.user, booking_id, pin=None, replace_existing=True
        )
    except ServiceError as exc:
        session.rollback()
        return done(request, back, say(exc, "this booking"), "error")
    return done(request, back, "New guest code issued. The old one stops working.")


@router.post("/app/codes/{code_id}/revoke")
def revoke_code(
    code_id: str, request: Request, viewer: ViewerDep, form: CheckedForm, session: SessionDep
) -> Response:
    """Revoke a code: the doors stop accepting it once the gateway has the change."""
    code = code_service.get_code(session, viewer.user, code_id)
    anchor = f"booking-{code.booking_id}" if code.booking_id else ""
    back = property_url(code.property_id, anchor)
    if not confirmed(form):
        return confirm_page(
            request,
            viewer,
            form,
            question="Revoke this code? It stops opening the doors.",
            button="Revoke the code",
            back=back,
        )
    try:
        code_service.revoke_code(session, viewer.user, code_id)
    except ServiceError as exc:
        session.rollback()
        return done(request, back, say(exc, "this code"), "error")
    return done(
        request,
        back,
        "Code revoked. The doors stop accepting it as soon as the gateway has the change.",
    )


def _lock_request(
    ctx: AppContext, request: Request, form: FormData, lock_id: str
) -> tuple[Viewer, str, str]:
    """Who asks (checked and CSRF-checked) and the lock's name and property, in a short session:
    the action then waits for the gateway without holding the database."""
    with ctx.db.session() as session:
        viewer = get_viewer(request, session)
        check_csrf(viewer, form)
        lock = load_lock(session, viewer.user, lock_id, Permission.VIEW)
        return viewer, lock.name, lock.property_id


@router.post("/app/locks/{lock_id}/action")
async def lock_action(lock_id: str, request: Request, ctx: CtxDep) -> Response:
    """Unlock or lock remotely, after confirmation: a signed command to the lock's gateway."""
    form = await read_form(request)
    viewer, lock_name, property_id = await run_in_threadpool(
        _lock_request, ctx, request, form, lock_id
    )
    action = text(form, "action")
    back = property_url(property_id)
    if action not in PAST:
        return error_page(request, 400, "Choose unlock or lock.", viewer=viewer)
    if not confirmed(form):
        return confirm_page(
            request,
            viewer,
            form,
            question=f"{action.capitalize()} {lock_name} now?",
            button=f"{action.capitalize()} {lock_name}",
            back=back,
        )
    try:
        command = await run_lock_action(ctx, viewer.user, lock_id, action, LOCK_ACTION_WAIT_S)
    except ServiceError as exc:
        return done(request, back, say(exc, "this lock"), "error")
    detail = command.detail or command.reason or "no reason given"
    if command.state is CommandState.OK:
        return done(request, back, f"{lock_name} {PAST[action]}.")
    if command.state is CommandState.PENDING:
        return done(
            request,
            back,
            f"Sent to the gateway; no answer yet. The activity shows when {lock_name} is "
            f"{PAST[action]}.",
            "info",
        )
    if command.state is CommandState.EXPIRED:
        return done(request, back, "The gateway did not answer in time; nothing was done.", "error")
    return done(request, back, f"The gateway could not {action} {lock_name}: {detail}.", "error")


@router.post("/app/gateways")
def create_gateway(
    request: Request, viewer: ViewerDep, form: CheckedForm, session: SessionDep, ctx: CtxDep
) -> Response:
    """Create a gateway and show its one-time enrollment token and command (only now)."""
    property_id, name = text(form, "property"), text(form, "name")
    try:
        data = GatewayCreate.model_validate({"name": name})
    except ValidationError:
        return gateways_page(
            request,
            session,
            viewer,
            error="Give the gateway a name, up to 80 characters.",
            chosen=property_id,
            name=name,
            status_code=422,
        )
    ttl = timedelta(hours=ctx.settings.enrollment_token_ttl_hours)
    try:
        gateway, token = gateway_service.create_gateway(
            session, viewer.user, property_id, data, ttl
        )
    except ServiceError as exc:
        session.rollback()
        return gateways_page(
            request,
            session,
            viewer,
            error=say(exc, "that property"),
            chosen=property_id,
            name=name,
            status_code=exc.status,
        )
    return page(
        request,
        "gateway_created.html",
        viewer=viewer,
        nav="gateways",
        gateway=gateway,
        prop=gateway.property,
        token=token,
        command=gateway_service.enroll_command(ctx.settings.public_url, token),
    )
