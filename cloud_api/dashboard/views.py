"""What each page shows, read through the cloud's services (every rule and role check is theirs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from cloud_api.codes import local_date
from cloud_api.dashboard.session import Viewer
from cloud_api.db import utcnow
from cloud_api.models import AccessCode, Booking, CodeStatus, Gateway, Property, Role, Task
from cloud_api.services.access import Permission, allows, property_access
from cloud_api.services.activity import property_activity
from cloud_api.services.bookings import stay, upcoming_bookings
from cloud_api.services.code_views import CodeExtras, code_extras
from cloud_api.services.gateways import (
    GatewayHealth,
    codes_up_to_date,
    gateway_health,
    visible_gateways,
)
from cloud_api.services.live import digest, property_stamp
from cloud_api.services.overview import (
    PropertySummary,
    attention_of,
    property_summaries,
)
from cloud_api.services.properties import list_properties
from cloud_api.services.tasks import task_codes, upcoming_tasks

FEED_SIZE = 30  # entries on the property page and kept by the live feed
MAX_BOOKINGS = 50  # upcoming bookings listed on the property page
MAX_TASKS = 50
MAX_PROPERTIES = 1000  # offered in the add-a-gateway form


@dataclass(frozen=True, slots=True)
class CodeRow:
    """A code with its per-lock state and whether the viewer may read its PIN."""

    code: AccessCode
    extras: CodeExtras | None

    @property
    def pin(self) -> str | None:
        """The PIN, for those who may read it."""
        return self.code.pin if self.extras is not None and self.extras.pin_visible else None


@dataclass(frozen=True, slots=True)
class BookingRow:
    """An upcoming booking: its stay and its active codes."""

    booking: Booking
    check_in_at: datetime
    check_out_at: datetime
    codes: list[CodeRow]


@dataclass(frozen=True, slots=True)
class TaskRow:
    """An open task and its crew code."""

    task: Task
    code: CodeRow | None


@dataclass(frozen=True, slots=True)
class GatewayRow:
    """A gateway, its report, and whether it has the latest codes."""

    gateway: Gateway
    health: GatewayHealth
    up_to_date: bool
    prop: Property | None = None
    role: Role | None = None

    @property
    def uptime_s(self) -> float | None:
        """Uptime now: as reported, plus the time since, while the gateway is online."""
        reported, at = self.health.uptime_s, self.health.reported_at
        if reported is None or at is None or not self.gateway.online:
            return reported
        return reported + max(0.0, (utcnow() - at).total_seconds())


@dataclass(slots=True)
class BookingForm:
    """The new-booking form's values and errors (field name → message)."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def new_booking_form(prop: Property) -> BookingForm:
    """An empty form: checking in today at the property, out tomorrow."""
    today = local_date(utcnow(), prop.timezone)
    return BookingForm(
        {
            "guestName": "",
            "from": str(today),
            "to": str(today + timedelta(days=1)),
            "guestCount": "1",
            "guestEmail": "",
            "guestPhone": "",
        }
    )


def _gateway_rows(summary: PropertySummary) -> list[GatewayRow]:
    return [
        GatewayRow(g.gateway, g.health, codes_up_to_date(g.gateway, g.health))
        for g in summary.gateways
    ]


def overview_context(session: Session, viewer: Viewer) -> dict[str, Any]:
    """The properties overview: attention first, then each property with gateways and locks."""
    summaries = property_summaries(session, viewer.user)
    return {
        "summaries": summaries,
        "gateways": {s.prop.id: _gateway_rows(s) for s in summaries},
        "attention": attention_of(summaries),
        "overview_stamp": overview_stamp(summaries),
    }


def overview_stamp(summaries: list[PropertySummary]) -> str:
    """A digest of everything the overview shows; it changes when the page would."""
    return digest(
        tuple(
            (
                s.prop.id,
                s.prop.name,
                s.role,
                tuple(
                    (
                        g.gateway.id,
                        g.gateway.name,
                        g.gateway.online,
                        g.gateway.enrolled_at,
                        g.health.clock_trusted,
                    )
                    for g in s.gateways
                ),
                tuple(
                    (
                        lock.id,
                        lock.name,
                        lock.lock_state,
                        lock.battery_charge,
                        lock.battery_critical,
                        lock.door_state,
                        lock.reachable,
                    )
                    for lock in s.locks
                ),
                tuple((a.kind, a.gateway_id, a.lock_id, a.code_id, a.error) for a in s.attention),
            )
            for s in summaries
        )
    )


def property_context(
    session: Session, viewer: Viewer, property_id: str, *, with_feed: bool = True
) -> dict[str, Any]:
    """Everything the property page shows to this viewer."""
    user = viewer.user
    prop, role = property_access(session, user, property_id, Permission.SEE)
    may_view = allows(role, Permission.VIEW)
    context: dict[str, Any] = {
        "prop": prop,
        "role": role,
        "may_view": may_view,
        "may_operate": allows(role, Permission.OPERATE),
        "may_manage": allows(role, Permission.MANAGE),
        "summary": None,
        "gateways": [],
        "reachable": {},
        "bookings": [],
        "more_bookings": 0,
        "feed": [],
        "stamp": None,
    }
    tasks = upcoming_tasks(session, user, prop.id, MAX_TASKS)
    codes = task_codes(session, tasks)
    crew_codes: list[AccessCode] = list(codes.values())
    bookings: list[Booking] = []
    if may_view:
        summary = property_summaries(session, user, [prop.id])[0]
        bookings, total = upcoming_bookings(session, user, prop.id, MAX_BOOKINGS)
        online = {g.gateway.id: g.gateway.online for g in summary.gateways}
        context.update(
            summary=summary,
            gateways=_gateway_rows(summary),
            # Reachable now: reported reachable by a gateway that is online.
            reachable={
                lock.id: lock.reachable and online.get(lock.gateway_id, False)
                for lock in summary.locks
            },
            more_bookings=max(0, total - len(bookings)),
            stamp=property_stamp(session, user, prop.id),
        )
    booking_codes = [c for b in bookings for c in b.codes if c.status is CodeStatus.ACTIVE]
    extras = code_extras(session, booking_codes + crew_codes, user)
    context["bookings"] = [_booking_row(prop, b, extras) for b in bookings]
    context["tasks"] = [
        TaskRow(t, CodeRow(codes[t.id], extras.get(codes[t.id].id)) if t.id in codes else None)
        for t in tasks
    ]
    if with_feed:
        context["feed"] = property_activity(session, user, prop.id, FEED_SIZE)
    return context


def _booking_row(prop: Property, booking: Booking, extras: dict[str, CodeExtras]) -> BookingRow:
    starts, ends = stay(prop, booking)
    active = [c for c in booking.codes if c.status is CodeStatus.ACTIVE]
    return BookingRow(booking, starts, ends, [CodeRow(c, extras.get(c.id)) for c in active])


def gateways_context(session: Session, viewer: Viewer) -> dict[str, Any]:
    """Every gateway the viewer may see, and the properties where they may add one."""
    rows = []
    for gateway, prop, role in visible_gateways(session, viewer.user):
        health = gateway_health(gateway)
        rows.append(GatewayRow(gateway, health, codes_up_to_date(gateway, health), prop, role))
    memberships, _ = list_properties(session, viewer.user, 0, MAX_PROPERTIES)
    manageable = [prop for prop, role in memberships if allows(role, Permission.MANAGE)]
    return {"rows": rows, "manageable": manageable, "now": utcnow()}
