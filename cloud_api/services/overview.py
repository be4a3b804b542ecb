"""Each property at a glance: its gateways, its locks' live status, and what needs attention.

Attention, most urgent first: a gateway offline, a code that failed to set on a lock, a lock's
battery critical, a lock its gateway cannot reach, a gateway whose clock is not trusted. Read in a
handful of queries whatever the number of properties; only properties where the caller may see
locks and codes (not as contractor) carry gateways, locks and attention.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, load_only

from cloud_api.db import utcnow
from cloud_api.models import (
    AccessCode,
    Booking,
    CodeDelivery,
    CodeStatus,
    Gateway,
    Membership,
    Property,
    Role,
    SmartLock,
    Task,
    User,
)
from cloud_api.services.access import Permission, allows
from cloud_api.services.gateways import GatewayHealth, gateway_health
from sync_protocol.models import CodeKind, DeliveryState


class AttentionKind(StrEnum):
    """Something at a property a host should look at, most urgent first."""

    GATEWAY_OFFLINE = "gateway_offline"
    CODE_FAILED = "code_failed"
    BATTERY_CRITICAL = "battery_critical"
    LOCK_UNREACHABLE = "lock_unreachable"
    CLOCK_UNTRUSTED = "clock_untrusted"


URGENCY = {kind: rank for rank, kind in enumerate(AttentionKind)}
LIVE_STATUS = (
    SmartLock.id,
    SmartLock.property_id,
    SmartLock.gateway_id,
    SmartLock.name,
    SmartLock.lock_state,
    SmartLock.battery_charge,
    SmartLock.battery_critical,
    SmartLock.door_state,
    SmartLock.reachable,
    SmartLock.last_seen_at,
    SmartLock.status_reported_at,
)


@dataclass(frozen=True, slots=True)
class Attention:
    """One thing that needs attention, with the names the host knows things by."""

    kind: AttentionKind
    property_id: str
    property_name: str
    gateway_id: str | None = None
    gateway_name: str | None = None
    lock_id: str | None = None
    lock_name: str | None = None
    code_id: str | None = None
    code_kind: CodeKind | None = None
    code_label: str | None = None
    booking_id: str | None = None
    guest_name: str | None = None
    task_title: str | None = None
    error: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class GatewaySummary:
    """A gateway and its own report."""

    gateway: Gateway
    health: GatewayHealth


@dataclass(slots=True)
class PropertySummary:
    """A property, the caller's role there, and (if they may see them) gateways, locks and
    attention."""

    prop: Property
    role: Role
    gateways: list[GatewaySummary] = field(default_factory=list)
    locks: list[SmartLock] = field(default_factory=list)
    attention: list[Attention] = field(default_factory=list)

    @property
    def may_view(self) -> bool:
        """Whether the caller sees this property's locks, codes and activity."""
        return allows(self.role, Permission.VIEW)


def property_summaries(
    session: Session, user: User, property_ids: list[str] | None = None
) -> list[PropertySummary]:
    """The caller's live properties (or those of `property_ids` they belong to), by name."""
    query = (
        select(Property, Membership.role)
        .join(Membership, Membership.property_id == Property.id)
        .where(Membership.user_id == user.id, Property.deleted_at.is_(None))
        .order_by(Property.name, Property.id)
    )
    if property_ids is not None:
        query = query.where(Property.id.in_(property_ids))
    summaries = [PropertySummary(prop, role) for prop, role in session.execute(query).all()]
    viewable = {s.prop.id: s for s in summaries if s.may_view}
    if not viewable:
        return summaries
    gateways = session.scalars(
        select(Gateway)
        .where(Gateway.property_id.in_(viewable), Gateway.deleted_at.is_(None))
        .order_by(Gateway.created_at, Gateway.id)
    ).all()
    by_id = {g.id: g for g in gateways}
    for gateway in gateways:
        viewable[gateway.property_id].gateways.append(
            GatewaySummary(gateway, gateway_health(gateway))
        )
    locks = session.scalars(
        select(SmartLock)
        .where(SmartLock.property_id.in_(viewable), SmartLock.deleted_at.is_(None))
        .order_by(SmartLock.created_at, SmartLock.id)
        .options(load_only(*LIVE_STATUS))  # hundreds of rows: only what the pages show
    ).all()
    for lock in locks:
        viewable[lock.property_id].locks.append(lock)
    failed = _failed_codes(session, by_id, viewable)
    for summary in viewable.values():
        summary.attention = _attention(summary, by_id, failed.get(summary.prop.id, []))
    return summaries


def attention_of(summaries: list[PropertySummary]) -> list[Attention]:
    """Every property's attention items, most urgent first, then by property name."""
    items = [item for s in summaries for item in s.attention]
    return sorted(items, key=lambda a: (URGENCY[a.kind], a.property_name, a.property_id))


def _attention(
    summary: PropertySummary, gateways: dict[str, Gateway], failed: list[Attention]
) -> list[Attention]:
    prop = summary.prop
    items: list[Attention] = []
    for entry in summary.gateways:
        gateway = entry.gateway
        if gateway.enrolled_at is None:
            continue  # not installed yet: the gateways page says so
        if not gateway.online:
            kind, since = AttentionKind.GATEWAY_OFFLINE, gateway.last_seen_at
        elif entry.health.clock_trusted is False:
            kind, since = AttentionKind.CLOCK_UNTRUSTED, entry.health.reported_at
        else:
            continue
        items.append(
            Attention(
                kind,
                prop.id,
                prop.name,
                gateway_id=gateway.id,
                gateway_name=gateway.name,
                since=since,
            )
        )
    items += failed
    for lock in summary.locks:
        if lock.battery_critical:
            items.append(
                Attention(
                    AttentionKind.BATTERY_CRITICAL,
                    prop.id,
                    prop.name,
                    lock_id=lock.id,
                    lock_name=lock.name,
                    since=lock.status_reported_at,
                )
            )
        # Only on a gateway that is online and has reported the lock: otherwise the gateway's
        # own item says it all, or the lock is simply new.
        driver = gateways.get(lock.gateway_id)
        if (
            driver is not None
            and driver.online
            and lock.status_reported_at is not None
            and not lock.reachable
        ):
            items.append(
                Attention(
                    AttentionKind.LOCK_UNREACHABLE,
                    prop.id,
                    prop.name,
                    gateway_id=driver.id,
                    gateway_name=driver.name,
                    lock_id=lock.id,
                    lock_name=lock.name,
                    since=lock.last_seen_at,
                )
            )
    return sorted(items, key=lambda a: URGENCY[a.kind])


def _failed_codes(
    session: Session, gateways: dict[str, Gateway], summaries: dict[str, PropertySummary]
) -> dict[str, list[Attention]]:
    """Codes in force (active, not expired) that failed to set on a live lock, per property.

    The failed deliveries first (through the gateway index), then just their codes: a plan that
    stays cheap whatever the planner believes about the tables.
    """
    if not gateways:
        return {}
    failed = session.scalars(
        select(CodeDelivery)
        .where(
            CodeDelivery.gateway_id.in_(list(gateways)),
            CodeDelivery.state == DeliveryState.FAILED,
        )
        .order_by(CodeDelivery.updated_at, CodeDelivery.code_id, CodeDelivery.lock_id)
    ).all()
    if not failed:
        return {}
    now = utcnow()
    codes = {
        code.id: (code, guest_name, task_title)
        for code, guest_name, task_title in session.execute(
            select(AccessCode, Booking.guest_name, Task.title)
            .outerjoin(Booking, Booking.id == AccessCode.booking_id)
            .outerjoin(Task, Task.id == AccessCode.task_id)
            .where(
                AccessCode.id.in_({d.code_id for d in failed}),
                AccessCode.status == CodeStatus.ACTIVE,
                or_(AccessCode.ends_at.is_(None), AccessCode.ends_at > now),
            )
        ).all()
    }
    locks = {lock.id: lock for s in summaries.values() for lock in s.locks}
    found: dict[str, list[Attention]] = defaultdict(list)
    for delivery in failed:
        lock = locks.get(delivery.lock_id)
        if delivery.code_id not in codes or lock is None:
            continue  # revoked or expired meanwhile, or the lock was removed
        code, guest_name, task_title = codes[delivery.code_id]
        prop = summaries[lock.property_id].prop
        found[prop.id].append(
            Attention(
                AttentionKind.CODE_FAILED,
                prop.id,
                prop.name,
                gateway_id=delivery.gateway_id,
                lock_id=lock.id,
                lock_name=lock.name,
                code_id=code.id,
                code_kind=code.kind,
                code_label=code.label,
                booking_id=code.booking_id,
                guest_name=guest_name,
                task_title=task_title,
                error=delivery.error,
                since=delivery.updated_at,
            )
        )
    return found
