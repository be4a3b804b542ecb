"""What a code looks like on each lock, and whether check-in gating holds it back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_api.db import KNOWN_ROLES, NEW_CODES
from cloud_api.models import (
    AccessCode,
    Booking,
    CodeDelivery,
    Gateway,
    Membership,
    Property,
    Role,
    SmartLock,
    User,
)
from sync_protocol.models import CodeKind, DeliveryState


@dataclass(frozen=True, slots=True)
class LockDelivery:
    """A code's state on one lock: `state` is what to believe now, `reported` what was last said.

    A lock that has never reported the code shows `unset`. While its gateway is offline or the
    lock unreachable, the last report may be out of date: `state` is then `unknown` and `stale` set.
    """

    lock_id: str
    lock_name: str
    state: DeliveryState
    reported: DeliveryState | None
    error: str | None
    updated_at: datetime | None
    stale: bool


@dataclass(frozen=True, slots=True)
class CodeExtras:
    """Everything about a code that is not in its row."""

    locks: list[LockDelivery]
    awaiting_registration: bool
    pin_visible: bool


def pin_visible(code: AccessCode, user_id: str, role: Role | None) -> bool:
    """Who may read a PIN: guest and backup PINs the property's staff; a crew PIN its holder and
    the owners and managers; a permanent PIN its holder and the owners."""
    if code.holder_user_id == user_id:
        return True
    if code.kind is CodeKind.MANAGER:
        return role is Role.OWNER
    if code.kind is CodeKind.CREW:
        return role in (Role.OWNER, Role.MANAGER)
    return role in (Role.OWNER, Role.MANAGER, Role.CREW)


def awaiting_registration(prop: Property, booking: Booking | None, kind: CodeKind) -> bool:
    """Whether a guest code is held back until the guests have registered."""
    return (
        kind is CodeKind.GUEST
        and prop.guest_registration_required
        and booking is not None
        and booking.registration_completed_at is None
    )


def _locks(session: Session, property_ids: set[str]) -> dict[str, list[tuple[SmartLock, bool]]]:
    rows = session.execute(
        select(SmartLock, Gateway.online)
        .join(Gateway, Gateway.id == SmartLock.gateway_id)
        .where(SmartLock.property_id.in_(property_ids), SmartLock.deleted_at.is_(None))
        .order_by(SmartLock.created_at, SmartLock.id)
    ).all()
    by_property: dict[str, list[tuple[SmartLock, bool]]] = defaultdict(list)
    for lock, online in rows:
        by_property[lock.property_id].append((lock, online))
    return by_property


def _roles(session: Session, viewer: User, property_ids: set[str]) -> dict[str, Role]:
    known: dict[str, tuple[Property, Role]] = session.info.get(KNOWN_ROLES, {})
    roles = {pid: known[pid][1] for pid in property_ids if pid in known}
    missing = property_ids - roles.keys()
    if missing:
        rows = session.execute(
            select(Membership.property_id, Membership.role).where(
                Membership.user_id == viewer.id, Membership.property_id.in_(missing)
            )
        )
        roles.update(dict(rows.all()))  # a Result has keys(): dict() would read it as a mapping
    return roles


def _properties(session: Session, property_ids: set[str]) -> dict[str, Property]:
    """The properties, from the session when it holds them already."""
    known: dict[str, tuple[Property, Role]] = session.info.get(KNOWN_ROLES, {})
    props = {pid: known[pid][0] for pid in property_ids if pid in known}
    missing = property_ids - props.keys()
    if missing:
        found = session.scalars(select(Property).where(Property.id.in_(missing)))
        props.update({p.id: p for p in found})
    return props


def code_extras(
    session: Session, codes: Sequence[AccessCode], viewer: User
) -> dict[str, CodeExtras]:
    """Per-lock state, gating and PIN visibility for each code, in a few queries in all."""
    if not codes:
        return {}
    property_ids = {c.property_id for c in codes}
    roles = _roles(session, viewer, property_ids)
    locks = _locks(session, property_ids)
    fresh: set[str] = session.info.get(NEW_CODES, set())
    old = [c.id for c in codes if c.id not in fresh]  # a code made just now has no reports
    deliveries = {}
    if old:
        deliveries = {
            (d.code_id, d.lock_id): d
            for d in session.scalars(select(CodeDelivery).where(CodeDelivery.code_id.in_(old)))
        }
    props = _properties(session, property_ids)
    extras = {}
    for code in codes:
        views = []
        for lock, gateway_online in locks.get(code.property_id, []):
            row = deliveries.get((code.id, lock.id))
            stale = not gateway_online or not lock.reachable
            if row is None:
                state, reported, error, at = DeliveryState.UNSET, None, None, None
            else:
                reported, error, at = row.state, row.error, row.updated_at
                state = DeliveryState.UNKNOWN if stale else row.state
            views.append(LockDelivery(lock.id, lock.name, state, reported, error, at, stale))
        gated = awaiting_registration(props[code.property_id], code.booking, code.kind)
        visible = pin_visible(code, viewer.id, roles.get(code.property_id))
        extras[code.id] = CodeExtras(views, gated, visible)
    return extras
