"""The activity feed: events at the caller's properties, newest first, with names attached.

Fast with millions of events: each property's newest events come from its own index range
(property, occurred_at, id), merged and cut to the page; the total comes from the counts the
ingest keeps. A contractor sees only events tied to the tasks assigned to them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, String, and_, bindparam, func, or_, select, true, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from cloud_api.errors import NotFound
from cloud_api.models import (
    AccessCode,
    Booking,
    Event,
    EventCount,
    Gateway,
    Membership,
    Property,
    Role,
    SmartLock,
    Task,
    User,
)
from cloud_api.schemas.activity import ActivityPublic
from cloud_api.services.access import Permission, allows, property_access

MAX_MERGED_PROPERTIES = 64  # SQLite: beyond this, one query over all of them is cheaper


def _newest(query: Select[str, datetime], n: int) -> Select[str, datetime]:
    return query.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(n)


def _memberships(session: Session, user: User) -> tuple[list[str], list[str]]:
    rows = session.execute(
        select(Membership.property_id, Membership.role)
        .join(Property, Property.id == Membership.property_id)
        .where(Membership.user_id == user.id, Property.deleted_at.is_(None))
    ).all()
    visible = sorted(pid for pid, role in rows if allows(role, Permission.VIEW))
    contractor = sorted(pid for pid, role in rows if role is Role.CONTRACTOR)
    return visible, contractor


def _page_ids(
    session: Session, visible: list[str], task_ids: list[str], page: int, size: int
) -> list[str]:
    n = (page + 1) * size
    columns = select(Event.id, Event.occurred_at)
    parts: list[Select[str, datetime]] = []
    if not visible:
        pass
    elif session.get_bind().dialect.name == "postgresql":
        # One backward index scan per property (LATERAL), whatever the number of properties.
        ids = bindparam("property_ids", visible, type_=ARRAY(String))  # one parameter, one plan
        pids = func.unnest(ids).table_valued("pid").render_derived(name="p")
        newest = _newest(columns.where(Event.property_id == pids.c.pid), n).lateral("e")
        parts.append(
            select(newest.c.id, newest.c.occurred_at).select_from(pids.join(newest, true()))
        )
    elif len(visible) <= MAX_MERGED_PROPERTIES:
        parts += [_newest(columns.where(Event.property_id == pid), n) for pid in visible]
    else:
        parts.append(_newest(columns.where(Event.property_id.in_(visible)), n))
    if task_ids:
        parts.append(_newest(columns.where(Event.task_id.in_(task_ids)), n))
    if not parts:
        return []
    merged = (
        parts[0] if len(parts) == 1 else union_all(*(select(part.subquery()) for part in parts))
    ).subquery()
    return list(
        session.scalars(
            select(merged.c.id)
            .order_by(merged.c.occurred_at.desc(), merged.c.id.desc())
            .offset(page * size)
            .limit(size)
        )
    )


def activity_feed(
    session: Session, user: User, page: int, size: int
) -> tuple[list[ActivityPublic], int]:
    """One page of the feed and the total number of entries."""
    visible, contractor_at = _memberships(session, user)
    task_ids: list[str] = []
    if contractor_at:
        task_ids = list(
            session.scalars(
                select(Task.id).where(
                    Task.property_id.in_(contractor_at), Task.assigned_to == user.id
                )
            )
        )
    total = 0
    if visible:
        total += (
            session.scalar(
                select(func.coalesce(func.sum(EventCount.count), 0)).where(
                    EventCount.property_id.in_(visible)
                )
            )
            or 0
        )
    if task_ids:
        total += (
            session.scalar(
                select(func.count()).where(
                    Event.task_id.in_(task_ids), Event.property_id.in_(contractor_at)
                )
            )
            or 0
        )
    ids = _page_ids(session, visible, task_ids, page, size)
    return _details(session, ids), int(total)


def _details(session: Session, ids: list[str]) -> list[ActivityPublic]:
    if not ids:
        return []
    booking_id = func.coalesce(Event.booking_id, AccessCode.booking_id)
    rows = session.execute(
        select(
            Event,
            Property.name,
            Gateway.name,
            SmartLock.name,
            AccessCode.kind,
            Booking.id,
            Booking.guest_name,
        )
        .join(Property, Property.id == Event.property_id)
        .join(Gateway, Gateway.id == Event.gateway_id)
        .outerjoin(SmartLock, SmartLock.id == Event.lock_id)
        .outerjoin(AccessCode, AccessCode.id == Event.code_id)
        .outerjoin(Booking, Booking.id == booking_id)
        .where(Event.id.in_(ids))
        .order_by(Event.occurred_at.desc(), Event.id.desc())
    ).all()
    entries = []
    for event, property_name, gateway_name, lock_name, code_kind, booking, guest in rows:
        entries.append(
            ActivityPublic(
                id=event.id,
                type=event.type,
                occurred_at=event.occurred_at,
                received_at=event.received_at,
                clock_trusted=event.clock_trusted,
                method=event.method,
                result=event.result,
                details=event.details or {},
                property_id=event.property_id,
                property_name=property_name,
                gateway_id=event.gateway_id,
                gateway_name=gateway_name,
                lock_id=event.lock_id,
                lock_name=lock_name,
                code_id=event.code_id,
                code_kind=code_kind,
                booking_id=booking,
                guest_name=guest,
                task_id=event.task_id,
            )
        )
    return entries


def property_activity(
    session: Session, user: User, property_id: str, size: int, *, before: str | None = None
) -> list[ActivityPublic]:
    """The newest `size` events of one property, or those older than event `before`; a
    contractor sees those of their tasks."""
    _, role = property_access(session, user, property_id, Permission.SEE)
    columns = select(Event.id, Event.occurred_at)
    if allows(role, Permission.VIEW):
        query = columns.where(Event.property_id == property_id)
    else:
        mine = select(Task.id).where(Task.property_id == property_id, Task.assigned_to == user.id)
        query = columns.where(Event.property_id == property_id, Event.task_id.in_(mine))
    if before is not None:
        at = session.scalar(
            select(Event.occurred_at).where(Event.id == before, Event.property_id == property_id)
        )
        if at is None:
            raise NotFound(f"no event {before} at this property")
        query = query.where(
            or_(Event.occurred_at < at, and_(Event.occurred_at == at, Event.id < before))
        )
    ids = list(session.scalars(select(_newest(query, size).subquery().c.id)))
    return _details(session, ids)
