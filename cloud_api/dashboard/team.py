"""A property's team: who is a member with which role, inviting someone by email (the link is
shown once, to be sent by the host), removing a member, and the invitee's page to join."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from cloud_api.dashboard.actions import (
    CheckedForm,
    confirm_page,
    confirmed,
    done,
    property_url,
    text,
)
from cloud_api.dashboard.render import page
from cloud_api.dashboard.routing import DashboardRoute, error_page
from cloud_api.dashboard.session import Viewer, ViewerDep
from cloud_api.dashboard.words import ROLES, say
from cloud_api.db import utcnow
from cloud_api.deps import CtxDep, SessionDep
from cloud_api.errors import PermissionDenied, ServiceError
from cloud_api.models import Property, Role
from cloud_api.schemas.members import InvitationCreate, InvitationStatus
from cloud_api.services import members as member_service
from cloud_api.services.access import Permission, allows, property_access
from cloud_api.services.members import invitation_status

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

INVITE_ERRORS = {
    "email": "Enter the email address they log in with, like ana@example.com.",
    "role": "Choose a role.",
}


def team_url(property_id: str) -> str:
    """The team page of a property."""
    return f"/app/properties/{quote(property_id, safe='')}/team"


def _invitable(actor: Role) -> list[Role]:
    """Roles this member may invite: owners any, managers crew and contractors."""
    if allows(actor, Permission.OWN):
        return list(Role)
    return [Role.CREW, Role.CONTRACTOR]


def _team_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    prop: Property,
    role: Role,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    may_manage = allows(role, Permission.MEMBERS)
    now = utcnow()
    invitations = [
        (invitation, invitation_status(invitation, now))
        for invitation in (
            member_service.list_invitations(session, viewer.user, prop.id) if may_manage else []
        )
    ]
    return page(
        request,
        "team.html",
        status_code=status_code,
        viewer=viewer,
        nav="overview",
        csrf=viewer.csrf,
        prop=prop,
        role=role,
        may_manage=may_manage,
        members=member_service.list_members(session, viewer.user, prop.id),
        invitations=[(i, s) for i, s in invitations if s is InvitationStatus.PENDING],
        roles=[(r.value, ROLES[r]) for r in _invitable(role)],
        values=values or {"email": "", "role": Role.CREW.value},
        error=error,
    )


@router.get("/app/properties/{property_id}/team")
def show_team(
    property_id: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    """Members and their roles; owners and managers also invite and remove."""
    prop, role = property_access(session, viewer.user, property_id, Permission.VIEW)
    return _team_page(request, session, viewer, prop, role)


@router.post("/app/properties/{property_id}/team/invitations")
def invite(
    property_id: str,
    request: Request,
    viewer: ViewerDep,
    form: CheckedForm,
    session: SessionDep,
    ctx: CtxDep,
) -> Response:
    """Invite someone; the page shows the link to send them, once."""
    prop, role = property_access(session, viewer.user, property_id, Permission.MEMBERS)
    values = {"email": text(form, "email"), "role": text(form, "role")}
    try:
        data = InvitationCreate.model_validate(values)
        invitation, token = member_service.create_invitation(
            session,
            viewer.user,
            prop.id,
            data,
            timedelta(days=ctx.settings.invitation_ttl_days),
        )
    except ValidationError as exc:
        field = str((exc.errors()[0].get("loc") or ("email",))[0])
        message = INVITE_ERRORS.get(field, INVITE_ERRORS["email"])
        return _team_page(
            request, session, viewer, prop, role, values=values, error=message, status_code=422
        )
    except ServiceError as exc:
        session.rollback()
        return _team_page(
            request,
            session,
            viewer,
            prop,
            role,
            values=values,
            error=say(exc, "this property"),
            status_code=exc.status,
        )
    link = f"{ctx.settings.public_url.rstrip('/')}/app/invitations/{token}"
    return page(
        request,
        "invitation_created.html",
        viewer=viewer,
        nav="overview",
        prop=prop,
        invitation=invitation,
        role_name=ROLES[invitation.role],
        link=link,
    )


@router.post("/app/properties/{property_id}/team/invitations/{invitation_id}/revoke")
def revoke(
    property_id: str,
    invitation_id: str,
    request: Request,
    viewer: ViewerDep,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """Withdraw a pending invitation: its link stops working."""
    member_service.revoke_invitation(session, viewer.user, property_id, invitation_id)
    return done(request, team_url(property_id), "Invitation withdrawn. Its link no longer works.")


@router.post("/app/properties/{property_id}/team/members/{member_id}/remove")
def remove(
    property_id: str,
    member_id: str,
    request: Request,
    viewer: ViewerDep,
    form: CheckedForm,
    session: SessionDep,
) -> Response:
    """Remove a member (after confirmation): their codes stop working, their tasks open up."""
    if not confirmed(form):
        return confirm_page(
            request,
            viewer,
            form,
            question=(
                "Remove this member? Their codes stop opening the doors and their open tasks "
                "become unassigned."
            ),
            button="Remove the member",
            back=team_url(property_id),
        )
    try:
        member_service.remove_member(session, viewer.user, property_id, member_id)
    except ServiceError as exc:
        session.rollback()
        return done(request, team_url(property_id), say(exc, "this property"), "error")
    if member_id == viewer.user.id:
        return done(request, "/", "You left the property.")
    return done(request, team_url(property_id), "Member removed. Their codes stop working.")


@router.get("/app/invitations/{token}")
def show_invitation(
    token: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    """The invitee's page: which property, which role, and a button to join."""
    invitation, prop = member_service.pending_invitation(session, token)
    return page(
        request,
        "invitation.html",
        viewer=viewer,
        nav="overview",
        csrf=viewer.csrf,
        prop=prop,
        invitation=invitation,
        role_name=ROLES[invitation.role],
        token=token,
        other_email=invitation.email != viewer.user.email,
    )


@router.post("/app/invitations/{token}")
def accept(
    token: str, request: Request, viewer: ViewerDep, form: CheckedForm, session: SessionDep
) -> Response:
    """Join the property with the invitation's role."""
    try:
        prop, role = member_service.accept_invitation(session, viewer.user, token)
    except PermissionDenied:
        session.rollback()
        return error_page(
            request,
            403,
            f"This invitation is for another email address, and you are logged in as "
            f"{viewer.user.email}. Log out, then open the link again and log in with the "
            "address it was sent to.",
            "Invitation for someone else",
        )
    return done(request, property_url(prop.id), f"You joined {prop.name} as {ROLES[role]}.")
