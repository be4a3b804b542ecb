"""Scheduling a task (a cleaning, a repair) with its crew code, through POST /tasks's service."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cloud_api.codes import local_date
from cloud_api.dashboard.actions import CheckedForm, done, field_messages, property_url, text
from cloud_api.dashboard.render import page
from cloud_api.dashboard.routing import DashboardRoute
from cloud_api.dashboard.session import Viewer, ViewerDep
from cloud_api.dashboard.words import ROLES, say
from cloud_api.db import utcnow
from cloud_api.deps import SessionDep
from cloud_api.errors import InvalidInput, ServiceError
from cloud_api.models import Property, TaskType
from cloud_api.schemas.tasks import MAX_TASK_DAYS, TaskCreate
from cloud_api.services import members as member_service
from cloud_api.services import tasks as task_service
from cloud_api.services.access import Permission, property_access

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

FIELDS = ("title", "type", "startsAt", "endsAt", "assignedTo", "notes")
TYPES = {
    TaskType.CLEANING: "Cleaning",
    TaskType.MAINTENANCE: "Maintenance",
    TaskType.INSPECTION: "Inspection",
    TaskType.OTHER: "Other",
}
MESSAGES = {
    "title": "Enter what is to be done, in up to 120 characters.",
    "type": "Choose the kind of task.",
    "startsAt": "Enter when the task starts.",
    "endsAt": f"Enter when it ends: after it starts, and less than {MAX_TASK_DAYS} days later.",
    "assignedTo": "Choose a member of the property, or nobody yet.",
    "notes": "Keep the notes under 2,000 characters.",
}
DEFAULT_START, DEFAULT_HOURS = time(11, 0), 3


def _defaults(prop: Property) -> dict[str, str]:
    """Tomorrow 11:00 to 14:00 at the property, a cleaning that needs the doors."""
    day = local_date(utcnow(), prop.timezone) + timedelta(days=1)
    starts = datetime.combine(day, DEFAULT_START)
    ends = starts + timedelta(hours=DEFAULT_HOURS)
    return {
        "title": "",
        "type": TaskType.CLEANING.value,
        "startsAt": starts.strftime("%Y-%m-%dT%H:%M"),
        "endsAt": ends.strftime("%Y-%m-%dT%H:%M"),
        "assignedTo": "",
        "notes": "",
        "needsAccess": "yes",
    }


def _form_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    prop: Property,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    members = member_service.list_members(session, viewer.user, prop.id)
    return page(
        request,
        "task_form.html",
        status_code=status_code,
        viewer=viewer,
        nav="overview",
        csrf=viewer.csrf,
        prop=prop,
        values=values,
        errors=errors,
        types=[(t.value, label) for t, label in TYPES.items()],
        people=[(m.user.id, f"{m.user.name or m.user.email} ({ROLES[m.role]})") for m in members],
    )


@router.get("/app/properties/{property_id}/tasks/new")
def new_task(
    property_id: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    """The new-task form (owners and managers)."""
    prop, _ = property_access(session, viewer.user, property_id, Permission.MANAGE)
    return _form_page(request, session, viewer, prop, _defaults(prop), {})


@router.post("/app/properties/{property_id}/tasks")
def create_task(
    property_id: str,
    request: Request,
    viewer: ViewerDep,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """Create the task; with door access it gets a crew code for its window."""
    prop, _ = property_access(session, viewer.user, property_id, Permission.MANAGE)
    values = {name: text(form, name) for name in FIELDS}
    values["needsAccess"] = "yes" if text(form, "needsAccess") else ""
    body: dict[str, object] = {
        "propertyId": prop.id,
        "title": values["title"],
        "type": values["type"],
        "startsAt": values["startsAt"],
        "endsAt": values["endsAt"],
        "notes": values["notes"],
        "needsAccess": bool(values["needsAccess"]),
    }
    if values["assignedTo"]:
        body["assignedTo"] = values["assignedTo"]
    try:
        data = TaskCreate.model_validate(body)
        task = task_service.create_task(session, viewer.user, data)
    except ValidationError as exc:
        errors = field_messages(exc, MESSAGES)
        return _form_page(request, session, viewer, prop, values, errors, 422)
    except InvalidInput as exc:
        session.rollback()
        field = exc.field if exc.field in values else "_"
        message = MESSAGES.get(field, say(exc))
        return _form_page(request, session, viewer, prop, values, {field: message}, 422)
    except ServiceError as exc:
        session.rollback()
        return done(request, property_url(prop.id), say(exc, "this property"), "error")
    message = f"Task {task.title} created."
    if task.needs_access:
        message += " Its crew code is on its way to the doors."
    return done(request, property_url(prop.id, "crew-heading"), message)
