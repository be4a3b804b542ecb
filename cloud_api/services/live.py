"""Change stamps: a short value per property that changes when what a host watches changes.

Live views (the dashboard's server-sent events) poll a stamp about once a second and re-read only
the parts whose stamp moved. The stamp comes from the database alone, so it sees what another
process stored (ingest workers run apart from the web process). Three parts:

- `events`: the property's event count, kept by the ingest (one primary-key read);
- `locks`: a digest of its locks' live status and its gateways' presence, clock and sync;
- `codes`: a digest of counts and latest change times of its bookings, codes, tasks and code
  deliveries, and the local date (a booking leaves "upcoming" at midnight).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from cloud_api.codes import local_date
from cloud_api.db import utcnow
from cloud_api.models import (
    AccessCode,
    Booking,
    CodeDelivery,
    EventCount,
    Gateway,
    SmartLock,
    Task,
    User,
)
from cloud_api.services.access import Permission, require_property
from cloud_api.services.gateways import gateway_health

DIGEST_BYTES = 6  # a change is missed only on a 1-in-2^48 collision


def digest(value: object) -> str:
    """A short hex digest of a value's repr (stable for tuples of str, int, bool, datetime)."""
    return hashlib.blake2b(repr(value).encode(), digest_size=DIGEST_BYTES).hexdigest()


@dataclass(frozen=True, slots=True)
class PropertyStamp:
    """Where a property's watched state is; compare part by part to see what moved."""

    events: int
    locks: str
    codes: str

    def __str__(self) -> str:
        return f"{self.events}.{self.locks}.{self.codes}"

    @classmethod
    def parse(cls, text: str | None) -> PropertyStamp | None:
        """A stamp from its text (an SSE Last-Event-ID, a query parameter), None if malformed."""
        parts = (text or "").split(".")
        if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 18:
            return None
        if not all(len(p) == DIGEST_BYTES * 2 and _is_hex(p) for p in parts[1:]):
            return None
        return cls(int(parts[0]), parts[1], parts[2])


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def property_stamp(session: Session, user: User, property_id: str) -> PropertyStamp:
    """The property's stamp now; the caller must be allowed to see its locks and codes."""
    prop = require_property(session, user, property_id, Permission.VIEW)
    events = session.scalar(select(EventCount.count).where(EventCount.property_id == prop.id))
    locks = session.execute(
        select(
            SmartLock.id,
            SmartLock.name,
            SmartLock.gateway_id,
            SmartLock.lock_state,
            SmartLock.battery_charge,
            SmartLock.battery_critical,
            SmartLock.door_state,
            SmartLock.reachable,
            SmartLock.last_seen_at,
        )
        .where(SmartLock.property_id == prop.id, SmartLock.deleted_at.is_(None))
        .order_by(SmartLock.id)
    ).all()
    gateways = session.scalars(
        select(Gateway)
        .where(Gateway.property_id == prop.id, Gateway.deleted_at.is_(None))
        .order_by(Gateway.id)
    ).all()
    presence = []
    for g in gateways:
        health = gateway_health(g)
        presence.append(
            (
                g.id,
                g.name,
                g.online,
                g.enrolled_at,
                g.agent_version,
                health.clock_trusted,
                g.desired_dirty,
                g.desired_version,
                health.applied_version,
            )
        )
    gateway_ids = [g.id for g in gateways]
    changes = session.execute(
        union_all(
            select(literal("bookings"), func.count(), func.max(Booking.updated_at)).where(
                Booking.property_id == prop.id
            ),
            select(literal("codes"), func.count(), func.max(AccessCode.updated_at)).where(
                AccessCode.property_id == prop.id
            ),
            select(literal("tasks"), func.count(), func.max(Task.updated_at)).where(
                Task.property_id == prop.id
            ),
            select(literal("deliveries"), func.count(), func.max(CodeDelivery.updated_at)).where(
                CodeDelivery.gateway_id.in_(gateway_ids)
            ),
        )
    ).all()
    today = local_date(utcnow(), prop.timezone)
    return PropertyStamp(
        events=int(events or 0),
        locks=digest((tuple(tuple(row) for row in locks), tuple(presence))),
        codes=digest((tuple(sorted(tuple(row) for row in changes)), today)),
    )
