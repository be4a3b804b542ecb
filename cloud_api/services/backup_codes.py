"""A small pool of backup codes per property: kept on the locks ahead of need, handed to a booking
when its guest code could not be set on a lock (or when a host asks)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.models import AccessCode, Booking, CodeDelivery, CodeStatus, Property, SmartLock
from cloud_api.services.access_codes import guest_window, new_code, revoke
from sync_protocol.models import CodeKind, DeliveryState

log = logging.getLogger(__name__)

MAX_BACKUP_CODES = 5  # each one is a live PIN on every lock: keep the pool small
BACKUP_LABEL = "Backup"


def pool(session: Session, property_id: str) -> list[AccessCode]:
    """The property's backup codes not handed out yet, oldest first."""
    return list(
        session.scalars(
            select(AccessCode)
            .where(
                AccessCode.property_id == property_id,
                AccessCode.kind == CodeKind.BACKUP,
                AccessCode.status == CodeStatus.ACTIVE,
                AccessCode.booking_id.is_(None),
            )
            .order_by(AccessCode.created_at, AccessCode.id)
        )
    )


def _has_locks(session: Session, property_id: str) -> bool:
    return (
        session.scalar(
            select(SmartLock.id)
            .where(SmartLock.property_id == property_id, SmartLock.deleted_at.is_(None))
            .limit(1)
        )
        is not None
    )


def ensure_pool(session: Session, prop: Property) -> list[AccessCode]:
    """Top the pool up to the property's `backup_code_count` once it has a lock; revoke extras.

    Returns the pool. The caller marks the property's gateways changed.
    """
    if not _has_locks(session, prop.id):
        return []
    current = pool(session, prop.id)
    wanted = prop.backup_code_count
    now = utcnow()
    for extra in current[wanted:]:
        revoke(extra, now)
    current = current[:wanted]
    while len(current) < wanted:
        current.append(new_code(session, prop, CodeKind.BACKUP, None, None, label=BACKUP_LABEL))
    return current


def _set_on_locks(session: Session, code_ids: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(CodeDelivery.code_id, func.count())
        .where(CodeDelivery.code_id.in_(code_ids), CodeDelivery.state == DeliveryState.SET)
        .group_by(CodeDelivery.code_id)
    ).all()
    return {code_id: count for code_id, count in rows}


def handed_out(booking: Booking) -> AccessCode | None:
    """The active backup code already handed to a booking, if any."""
    for code in booking.codes:
        if code.kind is CodeKind.BACKUP and code.status is CodeStatus.ACTIVE:
            return code
    return None


def hand_out(
    session: Session, prop: Property, booking: Booking, now: datetime, *, reason: str
) -> AccessCode | None:
    """Give the booking a pool code (the one set on most locks), valid until its window ends.

    Idempotent: a booking keeps the backup code it already has. Returns None when the pool is
    empty. The pool is topped up again at once. The caller holds the property's row lock and marks
    its gateways changed.
    """
    existing = handed_out(booking)
    if existing is not None:
        return existing
    candidates = pool(session, prop.id)
    if not candidates:
        log.warning("property %s has no backup code left for booking %s", prop.id, booking.id)
        return None
    set_counts = _set_on_locks(session, [c.id for c in candidates])
    code = max(candidates, key=lambda c: (set_counts.get(c.id, 0), -candidates.index(c)))
    _, ends_at = guest_window(prop, booking)
    code.booking_id = booking.id
    code.handed_out_at = now
    code.ends_at = max(ends_at, now)
    code.label = booking.guest_name[:40]
    code.updated_at = now
    booking.codes.append(code)
    session.flush()
    ensure_pool(session, prop)
    log.info(
        "handed backup code %s to booking %s at property %s (%s)",
        code.id,
        booking.id,
        prop.id,
        reason,
    )
    return code
