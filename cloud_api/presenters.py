"""ORM rows to public models."""

from __future__ import annotations

from datetime import datetime

from cloud_api.models import (
    AccessCode,
    Booking,
    CodeStatus,
    Command,
    Gateway,
    Guest,
    Integration,
    Invitation,
    Property,
    Role,
    SmartLock,
    Task,
    User,
)
from cloud_api.schemas.auth import AccountPublic
from cloud_api.schemas.bookings import AccessCodePublic, BookingPublic, CodeLockState
from cloud_api.schemas.calendar import CalendarTask
from cloud_api.schemas.checkin import DocumentType, GuestPublic
from cloud_api.schemas.commands import CommandPublic
from cloud_api.schemas.gateways import GatewayPublic, GatewayStatus, SmartLockPublic
from cloud_api.schemas.integrations import IntegrationPublic
from cloud_api.schemas.members import InvitationPublic, MemberPublic
from cloud_api.schemas.properties import PropertyPublic
from cloud_api.schemas.tasks import TaskPublic
from cloud_api.services.code_views import CodeExtras
from cloud_api.services.integrations import integration_status
from cloud_api.services.members import Member, invitation_status
from cloud_api.services.smartlocks import lock_offline
from sync_protocol.models import DoorState, LockState

NO_EXTRAS = CodeExtras([], awaiting_registration=False, pin_visible=False)


def account_public(user: User) -> AccountPublic:
    """An account."""
    return AccountPublic(
        id=user.id,
        email=user.email,
        name=user.name,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def property_public(prop: Property, role: Role) -> PropertyPublic:
    """A property with the caller's role."""
    return PropertyPublic(
        id=prop.id,
        name=prop.name,
        timezone=prop.timezone,
        check_in_time=prop.check_in_time,
        check_out_time=prop.check_out_time,
        early_check_in_buffer_minutes=prop.early_buffer_minutes,
        late_check_out_buffer_minutes=prop.late_buffer_minutes,
        guest_registration_required=prop.guest_registration_required,
        backup_code_count=prop.backup_code_count,
        role=role,
        created_at=prop.created_at,
        updated_at=prop.updated_at,
    )


def code_public(code: AccessCode, extras: CodeExtras | None) -> AccessCodePublic:
    """An access code with its per-lock state; the PIN only for those who may read it."""
    extras = extras or NO_EXTRAS
    return AccessCodePublic(
        id=code.id,
        property_id=code.property_id,
        booking_id=code.booking_id,
        task_id=code.task_id,
        holder_user_id=code.holder_user_id,
        kind=code.kind,
        label=code.label,
        pin=code.pin if extras.pin_visible else None,
        starts_at=code.starts_at,
        ends_at=code.ends_at,
        status=code.status,
        awaiting_registration=extras.awaiting_registration,
        locks=[
            CodeLockState(
                lock_id=view.lock_id,
                lock_name=view.lock_name,
                state=view.state,
                reported_state=view.reported,
                error=view.error,
                updated_at=view.updated_at,
                stale=view.stale,
            )
            for view in extras.locks
        ],
        created_at=code.created_at,
        updated_at=code.updated_at,
        revoked_at=code.revoked_at,
        handed_out_at=code.handed_out_at,
    )


def booking_public(booking: Booking, extras: dict[str, CodeExtras]) -> BookingPublic:
    """A booking with its active codes."""
    return BookingPublic(
        id=booking.id,
        property_id=booking.property_id,
        guest_name=booking.guest_name,
        guest_email=booking.guest_email,
        guest_phone=booking.guest_phone,
        channel_id=booking.channel_id,
        check_in=booking.check_in,
        check_out=booking.check_out,
        status=booking.status,
        guest_count=booking.guest_count,
        registration_completed_at=booking.registration_completed_at,
        access_codes=[
            code_public(c, extras.get(c.id)) for c in booking.codes if c.status is CodeStatus.ACTIVE
        ],
        created_at=booking.created_at,
        updated_at=booking.updated_at,
    )


def gateway_status(gateway: Gateway, now: datetime) -> GatewayStatus:
    """Where a gateway is in its life."""
    if gateway.enrolled_at is not None:
        return GatewayStatus.ENROLLED
    expires = gateway.enrollment_expires_at
    if expires is not None and expires <= now:
        return GatewayStatus.ENROLLMENT_EXPIRED
    return GatewayStatus.AWAITING_ENROLLMENT


def gateway_fields(gateway: Gateway, now: datetime) -> dict[str, object]:
    """The fields of GatewayPublic, for it and its subclasses."""
    reported = gateway.reported_state or {}
    applied = reported.get("applied_version")
    return {
        "id": gateway.id,
        "property_id": gateway.property_id,
        "name": gateway.name,
        "status": gateway_status(gateway, now),
        "enrollment_expires_at": gateway.enrollment_expires_at,
        "enrolled_at": gateway.enrolled_at,
        "agent_version": gateway.agent_version,
        "online": gateway.online,
        "last_seen_at": gateway.last_seen_at,
        "desired_version": gateway.desired_version,
        "applied_version": applied if isinstance(applied, int) else None,
        "reported_at": gateway.reported_at,
        "created_at": gateway.created_at,
    }


def gateway_public(gateway: Gateway, now: datetime) -> GatewayPublic:
    """A gateway."""
    return GatewayPublic.model_validate(gateway_fields(gateway, now))


def smartlock_public(lock: SmartLock) -> SmartLockPublic:
    """A smart lock with its live status."""
    return SmartLockPublic(
        id=lock.id,
        property_id=lock.property_id,
        gateway_id=lock.gateway_id,
        kind=lock.kind,
        device_ref=lock.device_ref,
        name=lock.name,
        lock_state=lock.lock_state or LockState.UNKNOWN,
        battery_charge=lock.battery_charge,
        battery_critical=lock.battery_critical,
        door_state=lock.door_state or DoorState.UNKNOWN,
        offline=lock_offline(lock),
        last_seen_at=lock.last_seen_at,
        status_reported_at=lock.status_reported_at,
        created_at=lock.created_at,
    )


def invitation_public(invitation: Invitation, now: datetime) -> InvitationPublic:
    """An invitation (never its token)."""
    return InvitationPublic(
        id=invitation.id,
        property_id=invitation.property_id,
        email=invitation.email,
        role=invitation.role,
        status=invitation_status(invitation, now),
        invited_by=invitation.invited_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        accepted_at=invitation.accepted_at,
        revoked_at=invitation.revoked_at,
    )


def member_public(member: Member) -> MemberPublic:
    """A member of a property."""
    return MemberPublic(
        user_id=member.user.id,
        email=member.user.email,
        name=member.user.name,
        role=member.role,
        created_at=member.joined_at,
    )


def assignee_name(task: Task) -> str | None:
    """How the task's assignee is called."""
    if task.assignee is None:
        return None
    return task.assignee.name or task.assignee.email


def calendar_task(task: Task) -> CalendarTask:
    """The task part of a calendar or timeline entry."""
    return CalendarTask(
        id=task.id,
        type=task.type,
        title=task.title,
        status=task.status,
        assigned_to=task.assigned_to,
        assigned_to_name=assignee_name(task),
    )


def task_public(task: Task, code: AccessCode | None, extras: dict[str, CodeExtras]) -> TaskPublic:
    """A task and its crew code."""
    return TaskPublic(
        id=task.id,
        property_id=task.property_id,
        booking_id=task.booking_id,
        type=task.type,
        title=task.title,
        notes=task.notes,
        starts_at=task.starts_at,
        ends_at=task.ends_at,
        status=task.status,
        assigned_to=task.assigned_to,
        assigned_to_name=assignee_name(task),
        needs_access=task.needs_access,
        access_code=code_public(code, extras.get(code.id)) if code is not None else None,
        started_at=task.started_at,
        completed_at=task.completed_at,
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


def guest_public(guest: Guest) -> GuestPublic:
    """A registered guest."""
    return GuestPublic(
        id=guest.id,
        booking_id=guest.booking_id,
        first_name=guest.first_name,
        last_name=guest.last_name,
        document_type=DocumentType(guest.document_type),
        document_number=guest.document_number,
        nationality=guest.nationality,
        birth_date=guest.birth_date,
        email=guest.email,
        phone=guest.phone,
        created_at=guest.created_at,
    )


def integration_public(integration: Integration) -> IntegrationPublic:
    """An integration and whether its gateway is there."""
    return IntegrationPublic(
        id=integration.id,
        type=integration.type,
        name=integration.name,
        gateway_id=integration.gateway_id,
        property_id=integration.gateway.property_id,
        status=integration_status(integration.gateway),
        created_at=integration.created_at,
        updated_at=integration.updated_at,
    )


def command_public(command: Command) -> CommandPublic:
    """A remote command and how it ended."""
    return CommandPublic(
        id=command.id,
        lock_id=command.lock_id,
        gateway_id=command.gateway_id,
        action=command.action,
        state=command.state,
        reason=command.reason,
        detail=command.detail,
        issued_at=command.issued_at,
        expires_at=command.expires_at,
        finished_at=command.finished_at,
    )
