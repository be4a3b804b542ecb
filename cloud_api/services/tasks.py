"""Tasks: create, list, change, start, complete, delete; each task's crew code follows it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from cloud_api.codes import local_date, local_instant
from cloud_api.db import utcnow
from cloud_api.errors import Conflict, InvalidInput, NotFound
from cloud_api.models import (
    AccessCode,
    Booking,
    CodeStatus,
    Membership,
    Property,
    Role,
    Task,
    TaskStatus,
    User,
)
from cloud_api.schemas.tasks import TaskCreate, TaskUpdate, check_window
from cloud_api.services.access import (
    Permission,
    allows,
    member_property_ids,
    property_access,
    require_property,
    role_at,
    visible_property_ids,
)
from cloud_api.services.access_codes import issue_crew_code, revoke, taken_pins
from cloud_api.services.changes import property_changed
from sync_protocol.models import CodeKind

OPEN = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)


def crew_code(session: Session, task: Task) -> AccessCode | None:
    """The task's active crew code."""
    return session.scalar(
        select(AccessCode).where(
            AccessCode.task_id == task.id,
            AccessCode.kind == CodeKind.CREW,
            AccessCode.status == CodeStatus.ACTIVE,
        )
    )


def _check_assignee(session: Session, prop: Property, user_id: str | None) -> None:
    if user_id is None:
        return
    member = session.get(Membership, (user_id, prop.id))
    if member is None:
        raise InvalidInput(
            "assignedTo",
            f"{user_id!r} is not a member of property {prop.id}; invite them with "
            f"POST /properties/{prop.id}/invitations, then assign the task",
        )


def _check_booking(session: Session, prop: Property, booking_id: str | None) -> None:
    if booking_id is None:
        return
    booking = session.get(Booking, booking_id)
    if booking is None or booking.property_id != prop.id:
        raise InvalidInput("bookingId", f"{booking_id!r} is not a booking of property {prop.id}")


def _set_window(task: Task, prop: Property, starts_at: datetime, ends_at: datetime) -> None:
    task.starts_at = local_instant(starts_at, prop.timezone)
    task.ends_at = local_instant(ends_at, prop.timezone, late=True)
    if task.ends_at <= task.starts_at:
        raise InvalidInput("endsAt", "must be after startsAt (read in the property's time zone)")
    task.start_day = local_date(task.starts_at, prop.timezone)
    task.end_day = local_date(task.ends_at, prop.timezone)


def create_task(session: Session, user: User, data: TaskCreate) -> Task:
    """A new pending task with its crew code."""
    prop = require_property(session, user, data.property_id, Permission.MANAGE, lock=True)
    _check_assignee(session, prop, data.assigned_to)
    _check_booking(session, prop, data.booking_id)
    task = Task(
        property_id=prop.id,
        booking_id=data.booking_id,
        type=data.type,
        title=data.title,
        notes=data.notes,
        status=TaskStatus.PENDING,
        assigned_to=data.assigned_to,
        needs_access=data.needs_access,
        created_by=user.id,
    )
    _set_window(task, prop, data.starts_at, data.ends_at)
    session.add(task)
    session.flush()
    if task.needs_access:
        issue_crew_code(session, prop, task)
        property_changed(session, prop.id)
    session.commit()
    return task


def _visible(user: User) -> Select[Task]:
    """Tasks the caller may see: all at properties where they see bookings; as a contractor,
    only those assigned to them."""
    mine = and_(Task.assigned_to == user.id, Task.property_id.in_(member_property_ids(user)))
    return (
        select(Task)
        .where(Task.deleted_at.is_(None))
        .where(or_(Task.property_id.in_(visible_property_ids(user)), mine))
    )


def list_tasks(
    session: Session,
    user: User,
    page: int,
    size: int,
    *,
    property_id: str | None = None,
    status: TaskStatus | None = None,
    mine: bool = False,
) -> tuple[list[Task], int]:
    """Tasks the caller may see, soonest first."""
    query = _visible(user)
    if property_id is not None:
        require_property(session, user, property_id, Permission.SEE)
        query = query.where(Task.property_id == property_id)
    if status is not None:
        query = query.where(Task.status == status)
    if mine:
        query = query.where(Task.assigned_to == user.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(Task.assignee))
        .order_by(Task.starts_at, Task.id)
        .offset(page * size)
        .limit(size)
    ).all()
    return list(rows), total


def load_task(
    session: Session, user: User, task_id: str, permission: Permission
) -> tuple[Property, Task]:
    """A task the caller may act on; the assignee may always see and run their own task."""
    task = session.get(Task, task_id)
    message = f"task {task_id} not found"
    if task is None or task.deleted_at is not None:
        raise NotFound(message)
    if task.assigned_to == user.id and permission in (Permission.SEE, Permission.OPERATE):
        permission = Permission.SEE
    elif permission is Permission.SEE:
        permission = Permission.VIEW
    lock = permission is not Permission.SEE
    prop = require_property(
        session, user, task.property_id, permission, lock=lock, not_found=message
    )
    return prop, task


def get_task(session: Session, user: User, task_id: str) -> Task:
    """One task the caller may see."""
    return load_task(session, user, task_id, Permission.SEE)[1]


def _move_code(session: Session, prop: Property, task: Task, now: datetime) -> None:
    code = crew_code(session, task)
    if code is None or (code.starts_at, code.ends_at) == (task.starts_at, task.ends_at):
        return
    if code.pin in taken_pins(session, prop.id, task.starts_at, task.ends_at, exclude={code.id}):
        revoke(code, now)
        issue_crew_code(session, prop, task)
        return
    code.starts_at, code.ends_at, code.updated_at = task.starts_at, task.ends_at, now


def update_task(session: Session, user: User, task_id: str, data: TaskUpdate) -> Task:
    """Apply changes; the crew code moves with the window and changes PIN with the assignee."""
    prop, task = load_task(session, user, task_id, Permission.MANAGE)
    if task.status is TaskStatus.COMPLETED:
        raise Conflict(f"task {task_id} is completed; create a new task instead")
    changes = data.changes()
    if "assigned_to" in changes:
        _check_assignee(session, prop, changes["assigned_to"])
    if "booking_id" in changes:
        _check_booking(session, prop, changes["booking_id"])
    now = utcnow()
    if {"starts_at", "ends_at"} & changes.keys():
        starts = changes.get("starts_at", task.starts_at)
        ends = changes.get("ends_at", task.ends_at)
        if (starts.tzinfo is None) != (ends.tzinfo is None):
            # One new local time against a stored instant: read both at the property.
            starts, ends = (
                local_instant(starts, prop.timezone),
                local_instant(ends, prop.timezone, late=True),
            )
        problem = check_window(starts, ends)
        if problem is not None:
            raise InvalidInput("endsAt", problem)
        _set_window(task, prop, starts, ends)
    reassigned = "assigned_to" in changes and changes["assigned_to"] != task.assigned_to
    for field in ("type", "title", "notes", "assigned_to", "booking_id", "needs_access"):
        if field in changes:
            setattr(task, field, changes[field])
    task.updated_at = now
    session.flush()
    code = crew_code(session, task)
    if not task.needs_access:
        if code is not None:
            revoke(code, now)
    elif code is None or reassigned:
        if code is not None:
            revoke(code, now)  # the old assignee knows that PIN
            session.flush()
        issue_crew_code(session, prop, task)
    else:
        _move_code(session, prop, task, now)
        code.label = task.title[:40]
    property_changed(session, prop.id)
    session.commit()
    return task


def delete_task(session: Session, user: User, task_id: str) -> None:
    """Delete a task; its crew code is revoked."""
    prop, task = load_task(session, user, task_id, Permission.MANAGE)
    now = utcnow()
    task.deleted_at = now
    code = crew_code(session, task)
    if code is not None:
        revoke(code, now)
        property_changed(session, prop.id)
    session.commit()


def _may_run(session: Session, user: User, task: Task) -> None:
    """The assignee, and staff who may operate the property, start and complete tasks."""
    if task.assigned_to == user.id:
        return
    role = role_at(session, user, task.property_id)
    if role is None or (role is Role.CONTRACTOR):
        raise NotFound(f"task {task.id} not found")
    if not allows(role, Permission.OPERATE):
        property_access(session, user, task.property_id, Permission.OPERATE)


def start_task(session: Session, user: User, task_id: str) -> Task:
    """pending → in_progress."""
    _, task = load_task(session, user, task_id, Permission.SEE)
    _may_run(session, user, task)
    if task.status is not TaskStatus.PENDING:
        raise Conflict(f"task {task_id} is {task.status.value}; only a pending task can start")
    now = utcnow()
    task.status, task.started_at, task.updated_at = TaskStatus.IN_PROGRESS, now, now
    session.commit()
    return task


def complete_task(session: Session, user: User, task_id: str) -> Task:
    """pending or in_progress → completed; the crew code stops working at once."""
    prop, task = load_task(session, user, task_id, Permission.SEE)
    _may_run(session, user, task)
    if task.status is TaskStatus.COMPLETED:
        raise Conflict(f"task {task_id} is already completed")
    now = utcnow()
    task.status, task.completed_at, task.updated_at = TaskStatus.COMPLETED, now, now
    if task.started_at is None:
        task.started_at = now
    code = crew_code(session, task)
    if code is not None:
        revoke(code, now)
        property_changed(session, prop.id)
    session.commit()
    return task


def relocalise_tasks(session: Session, prop: Property) -> None:
    """Recompute the local dates of a property's tasks after its time zone changed."""
    for task in session.scalars(
        select(Task).where(Task.property_id == prop.id, Task.deleted_at.is_(None))
    ):
        task.start_day = local_date(task.starts_at, prop.timezone)
        task.end_day = local_date(task.ends_at, prop.timezone)


def task_codes(session: Session, tasks: list[Task]) -> dict[str, AccessCode]:
    """The active crew code of each task."""
    if not tasks:
        return {}
    codes = session.scalars(
        select(AccessCode).where(
            AccessCode.task_id.in_([t.id for t in tasks]),
            AccessCode.kind == CodeKind.CREW,
            AccessCode.status == CodeStatus.ACTIVE,
        )
    )
    return {code.task_id: code for code in codes if code.task_id is not None}


def upcoming_tasks(session: Session, user: User, property_id: str, limit: int) -> list[Task]:
    """A property's open tasks (pending or in progress) not over yet, soonest first; for a
    contractor only those assigned to them."""
    require_property(session, user, property_id, Permission.SEE)
    return list(
        session.scalars(
            _visible(user)
            .where(
                Task.property_id == property_id,
                Task.status.in_([s.value for s in OPEN]),
                Task.ends_at > utcnow(),
            )
            .options(selectinload(Task.assignee))
            .order_by(Task.starts_at, Task.id)
            .limit(limit)
        )
    )
