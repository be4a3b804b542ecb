"""Members of a property and invitations."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status

from cloud_api.db import utcnow
from cloud_api.deps import CtxDep, CurrentUser, SessionDep
from cloud_api.errors import ERROR_RESPONSES, FORBIDDEN, described
from cloud_api.presenters import invitation_public, member_public, property_public
from cloud_api.schemas.members import (
    InvitationCreate,
    InvitationCreated,
    InvitationsList,
    MemberPublic,
    MembersList,
    MemberUpdate,
)
from cloud_api.schemas.properties import PropertyPublic
from cloud_api.services import members as service

router = APIRouter(tags=["PropertyMembers"], responses=ERROR_RESPONSES)


@router.get(
    "/properties/{property_id}/invitations", response_model=InvitationsList, responses=FORBIDDEN
)
def list_invitations(property_id: str, user: CurrentUser, session: SessionDep) -> InvitationsList:
    """A property's invitations, newest first (owners and managers)."""
    now = utcnow()
    rows = service.list_invitations(session, user, property_id)
    return InvitationsList(invitations=[invitation_public(i, now) for i in rows])


@router.post(
    "/properties/{property_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationCreated,
    responses={**FORBIDDEN, **described(409, "Already a member")},
)
def create_invitation(
    property_id: str, body: InvitationCreate, user: CurrentUser, session: SessionDep, ctx: CtxDep
) -> InvitationCreated:
    """Invite someone by email; the response holds the one-time token to send them."""
    ttl = timedelta(days=ctx.settings.invitation_ttl_days)
    invitation, token = service.create_invitation(session, user, property_id, body, ttl)
    return InvitationCreated.model_validate(
        {
            **invitation_public(invitation, utcnow()).model_dump(),
            "token": token,
            "accept_path": f"/invitations/{token}/accept",
        }
    )


@router.delete(
    "/properties/{property_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**FORBIDDEN, **described(409, "Already accepted")},
)
def revoke_invitation(
    property_id: str, invitation_id: str, user: CurrentUser, session: SessionDep
) -> Response:
    """Revoke a pending invitation (idempotent)."""
    service.revoke_invitation(session, user, property_id, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/invitations/{token}/accept",
    response_model=PropertyPublic,
    responses={
        **described(403, "The invitation is for another email address"),
        **described(409, "Expired, revoked or already accepted"),
    },
)
def accept_invitation(token: str, user: CurrentUser, session: SessionDep) -> PropertyPublic:
    """Join the property with the invitation's role (logged in with the invited email)."""
    return property_public(*service.accept_invitation(session, user, token))


@router.get("/properties/{property_id}/members", response_model=MembersList, responses=FORBIDDEN)
def list_members(property_id: str, user: CurrentUser, session: SessionDep) -> MembersList:
    """A property's members, owners first."""
    rows = service.list_members(session, user, property_id)
    return MembersList(members=[member_public(m) for m in rows])


@router.patch(
    "/properties/{property_id}/members/{member_id}",
    response_model=MemberPublic,
    responses={**FORBIDDEN, **described(409, "The property would be left without an owner")},
)
def update_member(
    property_id: str, member_id: str, body: MemberUpdate, user: CurrentUser, session: SessionDep
) -> MemberPublic:
    """Change a member's access level."""
    return member_public(service.update_member(session, user, property_id, member_id, body.role))


@router.delete(
    "/properties/{property_id}/members/{member_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**FORBIDDEN, **described(409, "The property would be left without an owner")},
)
def remove_member(
    property_id: str, member_id: str, user: CurrentUser, session: SessionDep
) -> Response:
    """Remove a member (or leave): their codes are revoked, their open tasks unassigned."""
    service.remove_member(session, user, property_id, member_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
