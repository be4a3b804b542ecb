"""Properties: create, list, read, update, delete."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.models import (
    AccessCode,
    CodeStatus,
    Gateway,
    Integration,
    Invitation,
    Membership,
    Property,
    Role,
    SmartLock,
    Task,
    User,
)
from cloud_api.schemas.properties import PropertyCreate, PropertyUpdate
from cloud_api.services.access import Permission, property_access
from cloud_api.services.access_codes import rewindow_property
from cloud_api.services.backup_codes import ensure_pool
from cloud_api.services.changes import gateways_changed, property_changed
from cloud_api.services.tasks import relocalise_tasks

# API field -> column, where they differ.
COLUMNS = {
    "early_check_in_buffer_minutes": "early_buffer_minutes",
    "late_check_out_buffer_minutes": "late_buffer_minutes",
}
WINDOW_FIELDS = frozenset(
    {
        "timezone",
        "check_in_time",
        "check_out_time",
        "early_check_in_buffer_minutes",
        "late_check_out_buffer_minutes",
    }
)
DOOR_FIELDS = WINDOW_FIELDS | {"guest_registration_required", "backup_code_count"}


def create_property(session: Session, user: User, data: PropertyCreate) -> tuple[Property, Role]:
    """A new property owned by the caller."""
    prop = Property(
        name=data.name,
        timezone=data.timezone,
        check_in_time=data.check_in_time,
        check_out_time=data.check_out_time,
        early_buffer_minutes=data.early_check_in_buffer_minutes,
        late_buffer_minutes=data.late_check_out_buffer_minutes,
        guest_registration_required=data.guest_registration_required,
        backup_code_count=data.backup_code_count,
    )
    session.add(prop)
    session.flush()
    session.add(Membership(user_id=user.id, property_id=prop.id, role=Role.OWNER))
    session.commit()
    return prop, Role.OWNER


def list_properties(
    session: Session, user: User, page: int, size: int
) -> tuple[list[tuple[Property, Role]], int]:
    """The caller's properties by name, one page, and how many there are."""
    base = (
        select(Property, Membership.role)
        .join(Membership, Membership.property_id == Property.id)
        .where(Membership.user_id == user.id, Property.deleted_at.is_(None))
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(Property.name, Property.id).offset(page * size).limit(size)
    ).all()
    return [(prop, role) for prop, role in rows], total


def get_property(session: Session, user: User, property_id: str) -> tuple[Property, Role]:
    """One property the caller is a member of (contractors included)."""
    return property_access(session, user, property_id, Permission.SEE)


def update_property(
    session: Session, user: User, property_id: str, data: PropertyUpdate
) -> tuple[Property, Role]:
    """Apply changes; guest codes follow times, zone and buffers; gating and the backup pool
    follow their settings."""
    prop, role = property_access(session, user, property_id, Permission.MANAGE, lock=True)
    changed: set[str] = set()
    for field, value in data.changes().items():
        column = COLUMNS.get(field, field)
        if getattr(prop, column) != value:
            setattr(prop, column, value)
            changed.add(field)
    now = utcnow()
    prop.updated_at = now
    if changed & DOOR_FIELDS:
        session.flush()
        if changed & WINDOW_FIELDS:
            rewindow_property(session, prop, now)
        if "timezone" in changed:
            relocalise_tasks(session, prop)
        if "backup_code_count" in changed:
            ensure_pool(session, prop)
        property_changed(session, prop.id)
    session.commit()
    return prop, role


def delete_property(session: Session, user: User, property_id: str) -> list[str]:
    """Delete a property for every member: its gateways (certificates revoked), locks, codes,
    tasks and invitations go with it. Returns the gateways whose certificates were revoked."""
    prop, _ = property_access(session, user, property_id, Permission.OWN, lock=True)
    now = utcnow()
    gateways = list(
        session.scalars(
            select(Gateway).where(Gateway.property_id == prop.id, Gateway.deleted_at.is_(None))
        )
    )
    revoked = []
    for gateway in gateways:
        gateway.deleted_at = now
        gateway.enrollment_token_hash = None
        if gateway.cert_serial is not None:
            gateway.cert_revoked_at = now
            revoked.append(gateway.id)
    ids = [g.id for g in gateways]
    if ids:
        session.execute(
            update(SmartLock).where(SmartLock.gateway_id.in_(ids)).values(deleted_at=now)
        )
        session.execute(delete(Integration).where(Integration.gateway_id.in_(ids)))
    gateways_changed(session, [g.id for g in gateways if g.enrolled_at is not None])
    session.execute(
        update(AccessCode)
        .where(AccessCode.property_id == prop.id, AccessCode.status == CodeStatus.ACTIVE)
        .values(status=CodeStatus.REVOKED, revoked_at=now, updated_at=now)
    )
    session.execute(
        update(Task)
        .where(Task.property_id == prop.id, Task.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    session.execute(
        update(Invitation)
        .where(
            Invitation.property_id == prop.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    prop.deleted_at = now
    prop.updated_at = now
    session.commit()
    return revoked
