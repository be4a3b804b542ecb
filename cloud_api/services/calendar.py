"""The calendar (bookings and tasks in one paginated list) and the upcoming timeline by day.

A contractor sees only the tasks assigned to them, never bookings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.models import Booking, BookingStatus, Property, Role, Task, User
from cloud_api.services.access import (
    Permission,
    member_property_ids,
    property_access,
    visible_property_ids,
)
from cloud_api.services.bookings import stay

MAX_TIMELINE_ENTRIES = 500


@dataclass(frozen=True, slots=True)
class CalendarItem:
    """One calendar event with its booking or task."""

    id: str
    prop: Property
    start: date
    end: date
    type: str
    created_at: datetime
    updated_at: datetime
    booking: Booking | None
    task: Task | None


@dataclass(frozen=True, slots=True)
class Scope:
    """Which bookings and tasks a caller may see."""

    bookings: ColumnElement[bool]
    tasks: ColumnElement[bool]


def _scope(session: Session, user: User, property_id: str | None) -> Scope:
    if property_id is not None:
        _, role = property_access(session, user, property_id, Permission.SEE)
        tasks = Task.property_id == property_id
        if role is Role.CONTRACTOR:
            return Scope(false(), and_(tasks, Task.assigned_to == user.id))
        return Scope(Booking.property_id == property_id, tasks)
    mine = and_(Task.assigned_to == user.id, Task.property_id.in_(member_property_ids(user)))
    visible = visible_property_ids(user)
    return Scope(Booking.property_id.in_(visible), or_(Task.property_id.in_(visible), mine))


def _union(scope: Scope, start: date | None, end: date | None) -> Select[str, str, str, date, date]:
    bookings = select(
        Booking.id.label("id"),
        literal("booking", String(16)).label("type"),
        Booking.property_id.label("property_id"),
        Booking.check_in.label("start"),
        Booking.check_out.label("end"),
    ).where(scope.bookings, Booking.status == BookingStatus.CONFIRMED)
    tasks = select(
        Task.id.label("id"),
        Task.type.label("type"),
        Task.property_id.label("property_id"),
        Task.start_day.label("start"),
        Task.end_day.label("end"),
    ).where(scope.tasks, Task.deleted_at.is_(None))
    if start is not None:
        bookings = bookings.where(Booking.check_out >= start)
        tasks = tasks.where(Task.end_day >= start)
    if end is not None:
        bookings = bookings.where(Booking.check_in <= end)
        tasks = tasks.where(Task.start_day <= end)
    events = union_all(bookings, tasks).subquery()
    return select(events.c.id, events.c.type, events.c.property_id, events.c.start, events.c.end)


def calendar(
    session: Session,
    user: User,
    page: int,
    size: int,
    *,
    property_id: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> tuple[list[CalendarItem], int]:
    """One page of events (earliest first) and their total; all of one property's, or the
    upcoming ones (not ended before today) across every property the caller belongs to."""
    scope = _scope(session, user, property_id)
    if property_id is None and start is None:
        start = utcnow().date() - timedelta(days=1)  # a day's margin for zones behind UTC
    query = _union(scope, start, end)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(query.selected_columns.start, query.selected_columns.id)
        .offset(page * size)
        .limit(size)
    ).all()
    booking_ids = [r.id for r in rows if r.type == "booking"]
    task_ids = [r.id for r in rows if r.type != "booking"]
    bookings = {
        b.id: b for b in session.scalars(select(Booking).where(Booking.id.in_(booking_ids)))
    }
    tasks = {t.id: t for t in session.scalars(select(Task).where(Task.id.in_(task_ids)))}
    props = {
        p.id: p
        for p in session.scalars(
            select(Property).where(Property.id.in_({r.property_id for r in rows}))
        )
    }
    items = []
    for row in rows:
        booking, task = bookings.get(row.id), tasks.get(row.id)
        source = booking or task
        assert source is not None
        items.append(
            CalendarItem(
                row.id,
                props[row.property_id],
                row.start,
                row.end,
                str(row.type),
                source.created_at,
                source.updated_at,
                booking,
                task,
            )
        )
    return items, total


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """A check-in, check-out or task at a local date and instant."""

    type: str
    at: datetime
    day: date
    local_time: str
    prop: Property
    booking: Booking | None
    task: Task | None


def timeline(
    session: Session, user: User, days: int
) -> tuple[date, date, dict[date, list[TimelineItem]], bool]:
    """Check-ins, check-outs and tasks from today for `days` days, by each property's local day."""
    now = utcnow()
    first, last = now.date() - timedelta(days=1), now.date() + timedelta(days=days + 1)
    scope = _scope(session, user, None)
    bookings = session.execute(
        select(Booking, Property)
        .join(Property, Property.id == Booking.property_id)
        .where(scope.bookings, Booking.status == BookingStatus.CONFIRMED)
        .where(
            or_(
                and_(Booking.check_in >= first, Booking.check_in <= last),
                and_(Booking.check_out >= first, Booking.check_out <= last),
            )
        )
        .limit(MAX_TIMELINE_ENTRIES * 2)
    ).all()
    tasks = session.execute(
        select(Task, Property)
        .join(Property, Property.id == Task.property_id)
        .where(scope.tasks, Task.deleted_at.is_(None))
        .where(Task.start_day >= first, Task.start_day <= last)
        .limit(MAX_TIMELINE_ENTRIES * 2)
    ).all()
    items: list[TimelineItem] = []
    for booking, prop in bookings:
        check_in_at, check_out_at = stay(prop, booking)
        items.append(_item("check_in", check_in_at, prop, booking, None))
        items.append(_item("check_out", check_out_at, prop, booking, None))
    for task, prop in tasks:
        items.append(_item("task", task.starts_at, prop, None, task))
    start_day, end_day = now.date(), now.date() + timedelta(days=days - 1)
    wanted = []
    for item in items:
        today = now.astimezone(ZoneInfo(item.prop.timezone)).date()
        if today <= item.day < today + timedelta(days=days):
            wanted.append(item)
    wanted.sort(key=lambda i: (i.at, i.type))
    truncated = len(wanted) > MAX_TIMELINE_ENTRIES
    grouped: dict[date, list[TimelineItem]] = defaultdict(list)
    for item in wanted[:MAX_TIMELINE_ENTRIES]:
        grouped[item.day].append(item)
        start_day, end_day = min(start_day, item.day), max(end_day, item.day)
    return start_day, end_day, dict(sorted(grouped.items())), truncated


def _item(
    kind: str, at: datetime, prop: Property, booking: Booking | None, task: Task | None
) -> TimelineItem:
    local = at.astimezone(ZoneInfo(prop.timezone))
    return TimelineItem(kind, at, local.date(), f"{local:%H:%M}", prop, booking, task)
