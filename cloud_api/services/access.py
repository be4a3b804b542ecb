"""Who may see and change what: every property check goes through here.

Roles at a property, from most to least trusted:

| permission | owner | manager | crew | contractor |
|---|---|---|---|---|
| SEE: the property itself | ✓ | ✓ | ✓ | ✓ |
| VIEW: bookings, codes, locks, gateways, members, whole calendar, activity | ✓ | ✓ | ✓ | |
| OPERATE: register guests, start/complete any task, remote lock actions | ✓ | ✓ | ✓ | |
| MANAGE: settings, bookings, all codes, tasks, locks, gateways, integrations | ✓ | ✓ | | |
| MEMBERS: invite and manage crew and contractors | ✓ | ✓ | | |
| OWN: delete the property; invite and manage owners and managers | ✓ | | | |

A contractor sees only what is tied to the tasks assigned to them (their tasks, those tasks'
calendar and timeline entries and activity) and may start and complete those tasks. A non-member
gets 404 for everything of a property, so it cannot even learn that the property exists.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud_api.db import KNOWN_ROLES
from cloud_api.errors import NotFound, PermissionDenied
from cloud_api.models import Membership, Property, Role, User


class Permission(StrEnum):
    """What a caller wants to do at a property."""

    SEE = "see"
    VIEW = "view"
    OPERATE = "operate"
    MANAGE = "manage"
    MEMBERS = "members"
    OWN = "own"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.MANAGER: frozenset(Permission) - {Permission.OWN},
    Role.CREW: frozenset({Permission.SEE, Permission.VIEW, Permission.OPERATE}),
    Role.CONTRACTOR: frozenset({Permission.SEE}),
}
WHAT = {
    Permission.SEE: "see it",
    Permission.VIEW: "see its bookings, codes, locks and activity",
    Permission.OPERATE: "register guests, run tasks and operate its locks",
    Permission.MANAGE: "change it, its bookings, codes, tasks, locks and gateways",
    Permission.MEMBERS: "manage its members",
    Permission.OWN: "delete it or manage its owners and managers",
}
CONTRACTOR_HINT = "; contractors see only the tasks assigned to them (GET /tasks)"


def roles_with(permission: Permission) -> list[Role]:
    """The roles that hold a permission, most trusted first."""
    return [role for role in Role if permission in ROLE_PERMISSIONS[role]]


def allows(role: Role, permission: Permission) -> bool:
    """Whether a role holds a permission."""
    return permission in ROLE_PERMISSIONS[role]


def denied(property_id: str, role: Role, permission: Permission) -> PermissionDenied:
    """The 403 for a member whose role lacks a permission."""
    roles = " or ".join(r.value for r in roles_with(permission))
    hint = CONTRACTOR_HINT if role is Role.CONTRACTOR else ""
    return PermissionDenied(
        f"your role at property {property_id} is {role.value}; to {WHAT[permission]} you need "
        f"to be its {roles}{hint}"
    )


def member_property_ids(user: User, *roles: Role) -> Select[str]:
    """The ids of the live properties a user is a member of (with one of `roles`), a subquery."""
    query = (
        select(Membership.property_id)
        .join(Property, Property.id == Membership.property_id)
        .where(Membership.user_id == user.id, Property.deleted_at.is_(None))
    )
    if roles:
        query = query.where(Membership.role.in_([r.value for r in roles]))
    return query


def visible_property_ids(user: User) -> Select[str]:
    """Properties whose bookings, codes and activity the user may see (not as contractor)."""
    return member_property_ids(user, *roles_with(Permission.VIEW))


def property_access(
    session: Session,
    user: User,
    property_id: str,
    permission: Permission = Permission.VIEW,
    *,
    lock: bool = False,
) -> tuple[Property, Role]:
    """The property and the caller's role; 404 for non-members, 403 for a role without rights.

    `lock` takes a row lock (PostgreSQL) so concurrent code issuing at one property serialises.
    """
    query = (
        select(Property, Membership.role)
        .join(Membership, Membership.property_id == Property.id)
        .where(
            Property.id == property_id,
            Membership.user_id == user.id,
            Property.deleted_at.is_(None),
        )
    )
    if lock:
        query = query.with_for_update(of=Property)
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"property {property_id} not found")
    prop, role = row
    session.info.setdefault(KNOWN_ROLES, {})[prop.id] = (prop, role)  # for presenting, later
    if not allows(role, permission):
        raise denied(property_id, role, permission)
    return prop, role


def require_property(
    session: Session,
    user: User,
    property_id: str,
    permission: Permission = Permission.VIEW,
    *,
    lock: bool = False,
    not_found: str | None = None,
) -> Property:
    """The property if the caller may act on it; `not_found` rewords the 404 for a child object.

    A contractor asking for a child object (a booking, a code, a lock) gets that object's 404 too:
    it is not tied to their tasks, so for them it does not exist.
    """
    try:
        return property_access(session, user, property_id, permission, lock=lock)[0]
    except NotFound:
        raise NotFound(not_found or f"property {property_id} not found") from None
    except PermissionDenied:
        if not_found is not None and role_at(session, user, property_id) is Role.CONTRACTOR:
            raise NotFound(not_found) from None
        raise


def role_at(session: Session, user: User, property_id: str) -> Role | None:
    """The user's role at a live property, or None."""
    return session.scalar(
        select(Membership.role)
        .join(Property, Property.id == Membership.property_id)
        .where(
            Membership.user_id == user.id,
            Membership.property_id == property_id,
            Property.deleted_at.is_(None),
        )
    )
