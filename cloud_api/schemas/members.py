"""Members of a property and invitations to join it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from cloud_api.models import Role
from cloud_api.schemas.common import Email, RequestModel, ResponseModel


class InvitationStatus(StrEnum):
    """Where an invitation is."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


class InvitationCreate(RequestModel):
    """Invite someone by email to join a property with a role."""

    email: Email
    role: Role = Field(
        Role.CREW,
        description="owner and manager invitations need an owner; managers invite crew and "
        "contractors",
    )


class InvitationPublic(ResponseModel):
    """An invitation to a property."""

    id: str
    property_id: str
    email: str
    role: Role
    status: InvitationStatus
    invited_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationCreated(InvitationPublic):
    """A new invitation with its one-time token (shown only here)."""

    token: str = Field(description="Send it to the invitee: POST /invitations/{token}/accept")
    accept_path: str


class InvitationsList(ResponseModel):
    """A property's invitations, newest first."""

    invitations: list[InvitationPublic]


class MemberPublic(ResponseModel):
    """A member of a property."""

    user_id: str
    email: str
    name: str
    role: Role
    created_at: datetime = Field(description="When they joined")


class MembersList(ResponseModel):
    """A property's members, owners first."""

    members: list[MemberPublic]


class MemberUpdate(RequestModel):
    """A member's new role."""

    role: Role
