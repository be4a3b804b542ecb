"""Smart locks of a property, each driven by one of its gateways, with their live status."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.errors import Conflict, InvalidInput, NotFound
from cloud_api.models import Gateway, SmartLock, User
from cloud_api.schemas.gateways import SmartLockCreate
from cloud_api.services.access import Permission, require_property
from cloud_api.services.backup_codes import ensure_pool
from cloud_api.services.changes import gateways_changed, property_changed


def create_smartlock(
    session: Session, user: User, property_id: str, data: SmartLockCreate
) -> SmartLock:
    """Add a lock; its gateway gets a new desired state that includes it (and the backup pool)."""
    prop = require_property(session, user, property_id, Permission.MANAGE, lock=True)
    gateway = session.get(Gateway, data.gateway_id)
    if gateway is None or gateway.property_id != prop.id or gateway.deleted_at is not None:
        raise InvalidInput(
            "gatewayId",
            f"{data.gateway_id!r} is not a gateway of this property; list them with "
            f"GET /properties/{prop.id}/gateways",
        )
    clash = session.scalar(
        select(SmartLock.id).where(
            SmartLock.gateway_id == gateway.id,
            SmartLock.kind == data.kind,
            SmartLock.device_ref == data.device_ref,
            SmartLock.deleted_at.is_(None),
        )
    )
    if clash is not None:
        raise Conflict(
            f"{data.kind.value} lock {data.device_ref!r} is already on this gateway as {clash}"
        )
    lock = SmartLock(
        property_id=prop.id,
        gateway_id=gateway.id,
        kind=data.kind,
        device_ref=data.device_ref,
        name=data.name,
    )
    session.add(lock)
    session.flush()
    if ensure_pool(session, prop):
        property_changed(session, prop.id)
    elif gateway.enrolled_at is not None:
        gateways_changed(session, [gateway.id])
    session.commit()
    return lock


def list_smartlocks(session: Session, user: User, property_id: str) -> list[SmartLock]:
    """A property's locks, oldest first."""
    require_property(session, user, property_id)
    return list(
        session.scalars(
            select(SmartLock)
            .where(SmartLock.property_id == property_id, SmartLock.deleted_at.is_(None))
            .order_by(SmartLock.created_at, SmartLock.id)
        )
    )


def load_lock(session: Session, user: User, lock_id: str, permission: Permission) -> SmartLock:
    """A live lock the caller may act on; 404 otherwise."""
    lock = session.get(SmartLock, lock_id)
    message = f"smart lock {lock_id} not found"
    if lock is None or lock.deleted_at is not None:
        raise NotFound(message)
    require_property(session, user, lock.property_id, permission, not_found=message)
    return lock


def delete_smartlock(session: Session, user: User, property_id: str, lock_id: str) -> None:
    """Remove a lock from its property; its gateway stops driving it."""
    require_property(session, user, property_id, Permission.MANAGE, lock=True)
    lock = session.get(SmartLock, lock_id)
    if lock is None or lock.deleted_at is not None or lock.property_id != property_id:
        raise NotFound(f"smart lock {lock_id} not found at property {property_id}")
    lock.deleted_at = utcnow()
    gateways_changed(session, [lock.gateway_id])
    session.commit()


def lock_offline(lock: SmartLock) -> bool:
    """Whether a lock is out of reach: its gateway is offline or cannot reach it."""
    return not lock.gateway.online or not lock.reachable
