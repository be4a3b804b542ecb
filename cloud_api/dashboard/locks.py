"""Adding and removing a property's locks: what each gateway reports it can reach (paired Nuki
locks, UniFi Access doors, the door keypad's strike relay) offered with one click, through the
same service as POST /properties/{id}/smartlocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_api.dashboard.actions import (
    CheckedForm,
    confirm_page,
    confirmed,
    done,
    property_url,
    text,
)
from cloud_api.dashboard.render import page
from cloud_api.dashboard.routing import DashboardRoute
from cloud_api.dashboard.session import Viewer, ViewerDep
from cloud_api.dashboard.words import say
from cloud_api.deps import SessionDep
from cloud_api.errors import ServiceError
from cloud_api.models import Gateway, Property, SmartLock
from cloud_api.schemas.gateways import SmartLockCreate
from cloud_api.services import smartlocks as lock_service
from cloud_api.services.access import Permission, property_access
from cloud_api.services.integrations import inventory_items, reported_inventory
from sync_protocol.models import LockKind

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

KINDS = {
    LockKind.NUKI: "Nuki lock",
    LockKind.UNIFI: "UniFi Access door",
    LockKind.RELAY: "Door strike",
}
NAME_ERROR = "Give the lock a name of up to 80 characters, like Front door."
RELAY_ERROR = "Enter the relay number on the keypad controller, like 1."


@dataclass(frozen=True, slots=True)
class Offer:
    """A device a gateway reports that is not a lock of any property yet."""

    kind: LockKind
    device_ref: str
    name: str
    detail: str
    ready: bool = True  # a Nuki lock must be paired with the gateway first
    hint: str = ""


@dataclass
class GatewayOffers:
    """One gateway and what it can drive."""

    gateway: Gateway
    offers: list[Offer] = field(default_factory=list)
    keypad: bool = False


def locks_url(property_id: str) -> str:
    """The lock management page of a property."""
    return f"/app/properties/{quote(property_id, safe='')}/locks"


def _taken(session: Session, gateway_ids: list[str]) -> set[tuple[str, LockKind, str]]:
    rows = session.execute(
        select(SmartLock.gateway_id, SmartLock.kind, SmartLock.device_ref).where(
            SmartLock.gateway_id.in_(gateway_ids), SmartLock.deleted_at.is_(None)
        )
    ).all()
    return {(g, kind, ref.lower()) for g, kind, ref in rows}


def gateway_offers(session: Session, prop: Property) -> list[GatewayOffers]:
    """Per installed gateway of the property, the devices it reports that no lock uses yet."""
    gateways = list(
        session.scalars(
            select(Gateway)
            .where(
                Gateway.property_id == prop.id,
                Gateway.deleted_at.is_(None),
                Gateway.enrolled_at.is_not(None),
            )
            .order_by(Gateway.name, Gateway.id)
        )
    )
    taken = _taken(session, [g.id for g in gateways])
    result = []
    for gateway in gateways:
        row = GatewayOffers(gateway)
        for device in inventory_items(gateway, "nuki"):
            ref = str(device.get("nuki_id") or "")
            if not ref or (gateway.id, LockKind.NUKI, ref.lower()) in taken:
                continue
            paired = bool(device.get("paired"))
            row.offers.append(
                Offer(
                    LockKind.NUKI,
                    ref,
                    str(device.get("name") or f"Nuki {ref}"),
                    f"Nuki ID {ref}",
                    ready=paired,
                    hint="" if paired else f"kasify-agent nuki pair {ref}",
                )
            )
        for door in inventory_items(gateway, "unifi"):
            ref = str(door.get("door_id") or "")
            if not ref or (gateway.id, LockKind.UNIFI, ref.lower()) in taken:
                continue
            name = str(door.get("name") or "UniFi door")
            row.offers.append(Offer(LockKind.UNIFI, ref, name, f"UniFi door {name}"))
        row.keypad = bool(reported_inventory(gateway).get("keypad_connected"))
        result.append(row)
    return result


def _locks_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    prop: Property,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    locks = list(
        session.scalars(
            select(SmartLock)
            .where(SmartLock.property_id == prop.id, SmartLock.deleted_at.is_(None))
            .order_by(SmartLock.name, SmartLock.id)
        )
    )
    return page(
        request,
        "locks.html",
        status_code=status_code,
        viewer=viewer,
        nav="overview",
        csrf=viewer.csrf,
        prop=prop,
        locks=locks,
        kinds={kind.value: label for kind, label in KINDS.items()},
        gateways=gateway_offers(session, prop),
        error=error,
    )


@router.get("/app/properties/{property_id}/locks")
def show_locks(
    property_id: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    """The property's locks and what its gateways can add (owners and managers)."""
    prop, _ = property_access(session, viewer.user, property_id, Permission.MANAGE)
    return _locks_page(request, session, viewer, prop)


@router.post("/app/properties/{property_id}/locks")
def add_lock(
    property_id: str,
    request: Request,
    viewer: ViewerDep,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """Add a lock driven by one of the property's gateways; its codes follow at once."""
    prop, _ = property_access(session, viewer.user, property_id, Permission.MANAGE)
    body = {
        "kind": text(form, "kind"),
        "deviceRef": text(form, "deviceRef"),
        "name": text(form, "name"),
        "gatewayId": text(form, "gatewayId"),
    }
    try:
        data = SmartLockCreate.model_validate(body)
        lock = lock_service.create_smartlock(session, viewer.user, prop.id, data)
    except ValidationError as exc:
        fields = {str((e.get("loc") or ("",))[0]) for e in exc.errors()}
        message = RELAY_ERROR if "deviceRef" in fields else NAME_ERROR
        return _locks_page(request, session, viewer, prop, error=message, status_code=422)
    except ServiceError as exc:
        session.rollback()
        return _locks_page(
            request, session, viewer, prop, error=say(exc, "this lock"), status_code=exc.status
        )
    return done(
        request,
        property_url(prop.id, "locks-heading"),
        f"{lock.name} added. The gateway starts driving it, and the property's codes go onto "
        "it now.",
    )


@router.post("/app/properties/{property_id}/locks/{lock_id}/remove")
def remove_lock(
    property_id: str,
    lock_id: str,
    request: Request,
    viewer: ViewerDep,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """Remove a lock (after confirmation): the gateway stops driving it."""
    if not confirmed(form):
        return confirm_page(
            request,
            viewer,
            form,
            question="Remove this lock from the property? The gateway deletes the property's "
            "codes from it, then stops driving it. If the lock is out of reach for more than "
            "5 minutes, codes still on it stay until their windows end.",
            button="Remove the lock",
            back=locks_url(property_id),
        )
    try:
        lock_service.delete_smartlock(session, viewer.user, property_id, lock_id)
    except ServiceError as exc:
        session.rollback()
        return done(request, locks_url(property_id), say(exc, "this lock"), "error")
    return done(request, locks_url(property_id), "Lock removed.")
