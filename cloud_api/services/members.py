"""Members of a property and invitations: who may join, with which role, and who may change it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.errors import Conflict, NotFound, PermissionDenied
from cloud_api.models import (
    AccessCode,
    CodeStatus,
    Invitation,
    Membership,
    Property,
    Role,
    Task,
    TaskStatus,
    User,
)
from cloud_api.schemas.members import InvitationCreate, InvitationStatus
from cloud_api.services.access import Permission, allows, denied, property_access
from cloud_api.services.changes import property_changed
from sync_protocol.models import CodeKind

INVITATION_PREFIX = "inv_"
SENIOR = frozenset({Role.OWNER, Role.MANAGER})  # inviting or changing these needs an owner
ROLE_ORDER = {Role.OWNER: 0, Role.MANAGER: 1, Role.CREW: 2, Role.CONTRACTOR: 3}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_status(invitation: Invitation, now: datetime) -> InvitationStatus:
    """Where an invitation is."""
    if invitation.accepted_at is not None:
        return InvitationStatus.ACCEPTED
    if invitation.revoked_at is not None:
        return InvitationStatus.REVOKED
    if invitation.expires_at <= now:
        return InvitationStatus.EXPIRED
    return InvitationStatus.PENDING


def _check_role_rights(property_id: str, actor: Role, *roles: Role) -> None:
    """Managing owners or managers needs an owner."""
    if SENIOR.intersection(roles) and not allows(actor, Permission.OWN):
        raise denied(property_id, actor, Permission.OWN)


def create_invitation(
    session: Session, user: User, property_id: str, data: InvitationCreate, ttl: timedelta
) -> tuple[Invitation, str]:
    """A pending invitation and its token in clear (shown once); re-inviting replaces it."""
    prop, actor = property_access(session, user, property_id, Permission.MEMBERS)
    _check_role_rights(prop.id, actor, data.role)
    member_role = session.scalar(
        select(Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(Membership.property_id == prop.id, User.email == data.email)
    )
    if member_role is not None:
        raise Conflict(
            f"{data.email} is already a member of property {prop.id} as {member_role.value}; "
            f"change the role with PATCH /properties/{prop.id}/members/{{userId}}"
        )
    now = utcnow()
    session.execute(
        update(Invitation)
        .where(
            Invitation.property_id == prop.id,
            Invitation.email == data.email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = INVITATION_PREFIX + secrets.token_urlsafe(32)
    invitation = Invitation(
        property_id=prop.id,
        email=data.email,
        role=data.role,
        token_hash=_digest(token),
        invited_by=user.id,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(invitation)
    session.commit()
    return invitation, token


def list_invitations(session: Session, user: User, property_id: str) -> list[Invitation]:
    """A property's invitations, newest first."""
    property_access(session, user, property_id, Permission.MEMBERS)
    return list(
        session.scalars(
            select(Invitation)
            .where(Invitation.property_id == property_id)
            .order_by(Invitation.created_at.desc(), Invitation.id)
        )
    )


def revoke_invitation(session: Session, user: User, property_id: str, invitation_id: str) -> None:
    """Revoke a pending invitation (idempotent)."""
    prop, actor = property_access(session, user, property_id, Permission.MEMBERS)
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.property_id != prop.id:
        raise NotFound(f"invitation {invitation_id} not found at property {property_id}")
    _check_role_rights(prop.id, actor, invitation.role)
    if invitation.accepted_at is not None:
        raise Conflict(
            f"invitation {invitation_id} was already accepted; remove the member with "
            f"DELETE /properties/{prop.id}/members/{invitation.accepted_by}"
        )
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
    session.commit()


def pending_invitation(
    session: Session, token: str, *, lock: bool = False
) -> tuple[Invitation, Property]:
    """The pending invitation a token is for, and its property (NotFound or Conflict else)."""
    query = select(Invitation).where(Invitation.token_hash == _digest(token))
    invitation = session.scalar(query.with_for_update() if lock else query)
    prop = session.get(Property, invitation.property_id) if invitation is not None else None
    if invitation is None or prop is None or prop.deleted_at is not None:
        raise NotFound("unknown invitation; ask for a new one")
    status = invitation_status(invitation, utcnow())
    if status is not InvitationStatus.PENDING:
        raise Conflict(f"this invitation is {status.value}; ask the property's owner for a new one")
    return invitation, prop


def accept_invitation(session: Session, user: User, token: str) -> tuple[Property, Role]:
    """Join the property the invitation is for, with its role."""
    invitation, prop = pending_invitation(session, token, lock=True)
    now = utcnow()
    if invitation.email != user.email:
        raise PermissionDenied(
            f"this invitation is for {invitation.email}, and you are logged in as {user.email}; "
            "log in with that address (or change your email with PUT /account)"
        )
    role = session.scalar(
        select(Membership.role).where(
            Membership.user_id == user.id, Membership.property_id == prop.id
        )
    )
    if role is not None:
        raise Conflict(
            f"you are already a member of property {prop.id} as {role.value}; ask an owner to "
            "change your role"
        )
    session.add(Membership(user_id=user.id, property_id=prop.id, role=invitation.role))
    invitation.accepted_at = now
    invitation.accepted_by = user.id
    session.commit()
    return prop, invitation.role


@dataclass(frozen=True, slots=True)
class Member:
    """A member and their role."""

    user: User
    role: Role
    joined_at: datetime


def list_members(session: Session, user: User, property_id: str) -> list[Member]:
    """A property's members, owners first, then by email."""
    property_access(session, user, property_id, Permission.VIEW)
    rows = session.execute(
        select(User, Membership.role, Membership.created_at)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.property_id == property_id)
    ).all()
    members = [Member(u, role, joined) for u, role, joined in rows]
    return sorted(members, key=lambda m: (ROLE_ORDER[m.role], m.user.email))


def _membership(session: Session, property_id: str, user_id: str) -> Membership:
    membership = session.get(Membership, (user_id, property_id))
    if membership is None:
        raise NotFound(f"user {user_id} is not a member of property {property_id}")
    return membership


def _owners(session: Session, property_id: str) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                Membership.property_id == property_id, Membership.role == Role.OWNER
            )
        )
        or 0
    )


def _keep_an_owner(session: Session, membership: Membership) -> None:
    if membership.role is Role.OWNER and _owners(session, membership.property_id) <= 1:
        raise Conflict(
            f"property {membership.property_id} must keep an owner; make another member owner "
            "first, or delete the property"
        )


def _revoke_held_codes(session: Session, property_id: str, user_id: str, *, all_kinds: bool) -> int:
    """Revoke codes a member holds at a property: permanent ones, and crew codes too if they
    leave. Returns how many."""
    now = utcnow()
    query = update(AccessCode).where(
        AccessCode.property_id == property_id,
        AccessCode.holder_user_id == user_id,
        AccessCode.status == CodeStatus.ACTIVE,
    )
    if not all_kinds:
        query = query.where(AccessCode.kind == CodeKind.MANAGER)
    result = session.execute(
        query.values(status=CodeStatus.REVOKED, revoked_at=now, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def update_member(
    session: Session, user: User, property_id: str, member_id: str, role: Role
) -> Member:
    """Change a member's role; losing owner/manager revokes their permanent codes."""
    prop, actor = property_access(session, user, property_id, Permission.MEMBERS, lock=True)
    membership = _membership(session, prop.id, member_id)
    _check_role_rights(prop.id, actor, membership.role, role)
    if membership.role is Role.OWNER and role is not Role.OWNER:
        _keep_an_owner(session, membership)
    membership.role = role
    if role not in SENIOR and _revoke_held_codes(session, prop.id, member_id, all_kinds=False):
        property_changed(session, prop.id)
    session.commit()
    target = session.get(User, member_id)
    assert target is not None
    return Member(target, role, membership.created_at)


def remove_member(session: Session, user: User, property_id: str, member_id: str) -> None:
    """Remove a member (anyone may leave): their codes are revoked and their open tasks
    unassigned."""
    leaving = member_id == user.id
    permission = Permission.SEE if leaving else Permission.MEMBERS
    prop, actor = property_access(session, user, property_id, permission, lock=True)
    membership = _membership(session, prop.id, member_id)
    if not leaving:
        _check_role_rights(prop.id, actor, membership.role)
    _keep_an_owner(session, membership)
    session.delete(membership)
    _revoke_held_codes(session, prop.id, member_id, all_kinds=True)
    session.execute(
        update(Task)
        .where(
            Task.property_id == prop.id,
            Task.assigned_to == member_id,
            Task.status != TaskStatus.COMPLETED,
        )
        .values(assigned_to=None, updated_at=utcnow())
    )
    property_changed(session, prop.id)
    session.commit()
