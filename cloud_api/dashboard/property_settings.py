"""A property's settings page: name, time zone, check-in/out times, code buffers, check-in
gating and the backup-code pool; owners and managers change them through PATCH's own service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from cloud_api.dashboard.actions import CheckedForm, done, field_messages, property_url, text
from cloud_api.dashboard.render import page
from cloud_api.dashboard.routing import DashboardRoute
from cloud_api.dashboard.session import Viewer, ViewerDep
from cloud_api.dashboard.words import say
from cloud_api.deps import SessionDep
from cloud_api.errors import InvalidInput, ServiceError
from cloud_api.models import Property
from cloud_api.schemas.properties import MAX_BACKUP_CODES, PropertyUpdate
from cloud_api.services import properties as property_service
from cloud_api.services.access import Permission, property_access

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

TEXT_FIELDS = (
    "name",
    "timezone",
    "checkInTime",
    "checkOutTime",
    "earlyCheckInBufferMinutes",
    "lateCheckOutBufferMinutes",
    "backupCodeCount",
)
NUMBER_FIELDS = {"earlyCheckInBufferMinutes", "lateCheckOutBufferMinutes", "backupCodeCount"}
MESSAGES = {
    "name": "Enter a name of up to 120 characters.",
    "timezone": "Enter a time zone by its IANA name, like Europe/Madrid or America/New_York.",
    "checkInTime": "Enter the check-in time as hours and minutes, like 15:00.",
    "checkOutTime": "Enter the check-out time as hours and minutes, like 11:00.",
    "earlyCheckInBufferMinutes": "Enter a number of minutes from 0 to 720.",
    "lateCheckOutBufferMinutes": "Enter a number of minutes from 0 to 720.",
    "backupCodeCount": f"Enter a number of backup codes from 0 to {MAX_BACKUP_CODES}.",
}


def _values(prop: Property) -> dict[str, str]:
    return {
        "name": prop.name,
        "timezone": prop.timezone,
        "checkInTime": prop.check_in_time.strftime("%H:%M"),
        "checkOutTime": prop.check_out_time.strftime("%H:%M"),
        "earlyCheckInBufferMinutes": str(prop.early_buffer_minutes),
        "lateCheckOutBufferMinutes": str(prop.late_buffer_minutes),
        "backupCodeCount": str(prop.backup_code_count),
        "guestRegistrationRequired": "yes" if prop.guest_registration_required else "",
    }


def _settings_page(
    request: Request,
    viewer: Viewer,
    prop: Property,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "settings.html",
        status_code=status_code,
        viewer=viewer,
        nav="overview",
        csrf=viewer.csrf,
        prop=prop,
        values=values,
        errors=errors,
        max_backup_codes=MAX_BACKUP_CODES,
    )


@router.get("/app/properties/{property_id}/settings")
def show_settings(
    property_id: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    """The settings form, filled with the property's current values (owners and managers)."""
    prop, _ = property_access(session, viewer.user, property_id, Permission.MANAGE)
    return _settings_page(request, viewer, prop, _values(prop), {})


def _body(values: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = values[name]
        body[name] = int(value) if name in NUMBER_FIELDS and value.isdigit() else value
    body["guestRegistrationRequired"] = values["guestRegistrationRequired"] == "yes"
    return body


@router.post("/app/properties/{property_id}/settings")
def save_settings(
    property_id: str,
    request: Request,
    viewer: ViewerDep,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """Save what changed; guest code windows follow new times, zone and buffers at once."""
    prop, _ = property_access(session, viewer.user, property_id, Permission.MANAGE)
    values = {name: text(form, name) for name in TEXT_FIELDS}
    values["guestRegistrationRequired"] = "yes" if text(form, "guestRegistrationRequired") else ""
    try:
        data = PropertyUpdate.model_validate(_body(values))
        updated, _ = property_service.update_property(session, viewer.user, property_id, data)
    except ValidationError as exc:
        return _settings_page(request, viewer, prop, values, field_messages(exc, MESSAGES), 422)
    except InvalidInput as exc:
        session.rollback()
        errors = {exc.field if exc.field in values else "_": say(exc)}
        return _settings_page(request, viewer, prop, values, errors, 422)
    except ServiceError as exc:
        session.rollback()
        return done(request, property_url(property_id), say(exc, "this property"), "error")
    return done(
        request,
        property_url(property_id),
        f"Settings of {updated.name} saved. Guest codes follow the new times at once.",
    )
