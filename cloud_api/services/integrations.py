"""Integrations (Nuki, UniFi), each bound to the gateway that reaches those locks on site, and
the devices that gateway reports it can reach."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.errors import Conflict, InvalidInput, NotFound
from cloud_api.models import Gateway, Integration, IntegrationType, Property, SmartLock, User
from cloud_api.schemas.integrations import (
    AssignedProperty,
    AvailableNukiSmartlock,
    IntegrationCreate,
    IntegrationStatus,
    IntegrationUpdate,
    NukiSmartlocksResponse,
    UnifilocksResponse,
    UnifiSmartlock,
)
from cloud_api.services.access import Permission, member_property_ids, require_property
from sync_protocol.models import LockKind, LockState

NUKI_LOCK_STATES = {
    LockState.LOCKED: 1,
    LockState.UNLOCKING: 2,
    LockState.UNLOCKED: 3,
    LockState.LOCKING: 4,
    LockState.UNLATCHED: 5,
    LockState.JAMMED: 254,
    LockState.UNKNOWN: 255,
}
UNDEFINED = 255


def integration_status(gateway: Gateway) -> IntegrationStatus:
    """online, offline, or unauthorized (the gateway is not enrolled or was deleted)."""
    if gateway.enrolled_at is None or gateway.deleted_at is not None:
        return IntegrationStatus.UNAUTHORIZED
    return IntegrationStatus.ONLINE if gateway.online else IntegrationStatus.OFFLINE


def _gateway(session: Session, user: User, gateway_id: str) -> Gateway:
    gateway = session.get(Gateway, gateway_id)
    if gateway is None or gateway.deleted_at is not None:
        raise InvalidInput("gatewayId", f"gateway {gateway_id!r} not found")
    try:
        require_property(session, user, gateway.property_id, Permission.MANAGE)
    except NotFound:
        raise InvalidInput("gatewayId", f"gateway {gateway_id!r} not found") from None
    return gateway


def _clash(session: Session, kind: IntegrationType, gateway_id: str, own: str | None) -> None:
    other = session.scalar(
        select(Integration.id).where(Integration.type == kind, Integration.gateway_id == gateway_id)
    )
    if other is not None and other != own:
        raise Conflict(
            f"gateway {gateway_id} already has the {kind.value} integration {other}; "
            f"update it with PUT /integrations/{kind.value}/{other}"
        )


def list_integrations(
    session: Session, user: User, kind: IntegrationType | None = None
) -> list[Integration]:
    """Integrations at properties the caller manages, oldest first."""
    from cloud_api.services.access import roles_with

    managed = member_property_ids(user, *roles_with(Permission.MANAGE))
    query = (
        select(Integration)
        .join(Gateway, Gateway.id == Integration.gateway_id)
        .where(Gateway.property_id.in_(managed), Gateway.deleted_at.is_(None))
    )
    if kind is not None:
        query = query.where(Integration.type == kind)
    return list(session.scalars(query.order_by(Integration.created_at, Integration.id)))


def create_integration(
    session: Session, user: User, kind: IntegrationType, data: IntegrationCreate
) -> Integration:
    """A new integration of one type, bound to a gateway of a property the caller manages."""
    gateway = _gateway(session, user, data.gateway_id)
    _clash(session, kind, gateway.id, None)
    integration = Integration(type=kind, name=data.name, gateway_id=gateway.id, created_by=user.id)
    session.add(integration)
    session.commit()
    return integration


def load_integration(
    session: Session, user: User, kind: IntegrationType, integration_id: str, permission: Permission
) -> Integration:
    """An integration of that type the caller may act on; 404 otherwise."""
    integration = session.get(Integration, integration_id)
    message = f"{kind.value} integration {integration_id} not found"
    if integration is None or integration.type is not kind or integration.gateway.deleted_at:
        raise NotFound(message)
    require_property(session, user, integration.gateway.property_id, permission, not_found=message)
    return integration


def update_integration(
    session: Session,
    user: User,
    kind: IntegrationType,
    integration_id: str,
    data: IntegrationUpdate,
) -> Integration:
    """Rename an integration or bind it to another gateway."""
    integration = load_integration(session, user, kind, integration_id, Permission.MANAGE)
    changes = data.changes()
    if "gateway_id" in changes and changes["gateway_id"] != integration.gateway_id:
        gateway = _gateway(session, user, changes["gateway_id"])
        _clash(session, kind, gateway.id, integration.id)
        integration.gateway_id = gateway.id
        integration.gateway = gateway
    if "name" in changes:
        integration.name = changes["name"]
    integration.updated_at = utcnow()
    session.commit()
    return integration


def delete_integration(
    session: Session, user: User, kind: IntegrationType, integration_id: str
) -> None:
    """Delete an integration (its locks stay until removed from the property)."""
    integration = load_integration(session, user, kind, integration_id, Permission.MANAGE)
    session.delete(integration)
    session.commit()


@dataclass(frozen=True, slots=True)
class _Assigned:
    lock: SmartLock
    prop: Property


def _assigned(session: Session, gateway: Gateway, kind: LockKind) -> dict[str, _Assigned]:
    rows = session.execute(
        select(SmartLock, Property)
        .join(Property, Property.id == SmartLock.property_id)
        .where(
            SmartLock.gateway_id == gateway.id,
            SmartLock.kind == kind,
            SmartLock.deleted_at.is_(None),
        )
    ).all()
    return {lock.device_ref.lower(): _Assigned(lock, prop) for lock, prop in rows}


def _assignment(found: _Assigned | None) -> AssignedProperty | None:
    if found is None:
        return None
    return AssignedProperty(
        property_id=found.prop.id,
        property_name=found.prop.name,
        smartlock_record_id=found.lock.id,
    )


def reported_inventory(gateway: Gateway) -> dict[str, Any]:
    """The inventory the gateway last reported (empty before it reported one)."""
    inventory = (gateway.reported_state or {}).get("inventory")
    return inventory if isinstance(inventory, dict) else {}


def inventory_items(gateway: Gateway, part: str) -> list[dict[str, Any]]:
    """The devices of one part (`nuki`, `unifi`) of the gateway's reported inventory."""
    return [item for item in reported_inventory(gateway).get(part) or [] if isinstance(item, dict)]


def nuki_smartlocks(session: Session, user: User, integration_id: str) -> NukiSmartlocksResponse:
    """Nuki locks the integration's gateway reports it can reach, with their assignment."""
    integration = load_integration(
        session, user, IntegrationType.NUKI, integration_id, Permission.MANAGE
    )
    gateway = integration.gateway
    status = integration_status(gateway)
    assigned = _assigned(session, gateway, LockKind.NUKI)
    smartlocks = []
    for device in inventory_items(gateway, "nuki"):
        ref = str(device.get("nuki_id", ""))
        try:
            number = int(ref, 16)
        except ValueError:
            continue
        found = assigned.get(ref.lower())
        lock = found.lock if found else None
        state = lock.lock_state if lock is not None and lock.lock_state else LockState.UNKNOWN
        smartlocks.append(
            AvailableNukiSmartlock(
                smartlock_id=number,
                device_ref=ref,
                name=str(device.get("name") or (lock.name if lock else "")),
                lock_state=NUKI_LOCK_STATES.get(state, UNDEFINED),
                battery_charge=lock.battery_charge if lock else None,
                battery_critical=lock.battery_critical if lock else None,
                offline=status is not IntegrationStatus.ONLINE
                or (lock is not None and not lock.reachable),
                assigned_property=_assignment(found),
            )
        )
    nuki_status = {
        IntegrationStatus.ONLINE: "online",
        IntegrationStatus.OFFLINE: "unreachable",
        IntegrationStatus.UNAUTHORIZED: "unauthorized",
    }[status]
    return NukiSmartlocksResponse(smartlocks=smartlocks, nuki_status=nuki_status)


def unifi_doors(session: Session, user: User, integration_id: str) -> UnifilocksResponse:
    """UniFi doors the integration's gateway reports its controller offers."""
    integration = load_integration(
        session, user, IntegrationType.UNIFI, integration_id, Permission.MANAGE
    )
    assigned = _assigned(session, integration.gateway, LockKind.UNIFI)
    doors = []
    for door in inventory_items(integration.gateway, "unifi"):
        door_id = str(door.get("door_id", ""))
        if not door_id:
            continue
        doors.append(
            UnifiSmartlock(
                floor_id=str(door.get("floor_id", "")),
                door_id=door_id,
                name=str(door.get("name", "")),
                assigned_property=_assignment(assigned.get(door_id.lower())),
            )
        )
    return UnifilocksResponse(smartlocks=doors)
