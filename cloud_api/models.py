"""The cloud's tables as typed SQLAlchemy 2 models, portable between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud_api.db import Base, StrEnumType, UtcDateTime, new_id, utcnow
from sync_protocol.models import CodeKind, DeliveryState, DoorState, LockKind, LockState

ID = String(36)


class Role(StrEnum):
    """A member's role at a property."""

    OWNER = "owner"
    MANAGER = "manager"
    CREW = "crew"
    CONTRACTOR = "contractor"


class BookingStatus(StrEnum):
    """Whether a booking still stands."""

    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class CodeStatus(StrEnum):
    """Whether an access code may open doors (within its window)."""

    ACTIVE = "active"
    REVOKED = "revoked"


class TaskStatus(StrEnum):
    """Where a task is in its life."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class TaskType(StrEnum):
    """What a task is for."""

    CLEANING = "cleaning"
    MAINTENANCE = "maintenance"
    INSPECTION = "inspection"
    OTHER = "other"


class IntegrationType(StrEnum):
    """Lock systems a gateway reaches on site."""

    NUKI = "nuki"
    UNIFI = "unifi"


class CommandState(StrEnum):
    """Where a remote lock command is."""

    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


class User(Base):
    """A person who logs in to the API."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class Property(Base):
    """A rental property with its time zone and default check-in/out times."""

    __tablename__ = "properties"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    check_in_time: Mapped[time] = mapped_column(Time)
    check_out_time: Mapped[time] = mapped_column(Time)
    early_buffer_minutes: Mapped[int] = mapped_column(Integer, default=0)
    late_buffer_minutes: Mapped[int] = mapped_column(Integer, default=0)
    guest_registration_required: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_code_count: Mapped[int] = mapped_column(Integer, default=2)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Membership(Base):
    """A user's role at a property."""

    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    property_id: Mapped[str] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[Role] = mapped_column(StrEnumType(Role))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Gateway(Base):
    """An agent at a property: enrollment, certificate, desired and reported state."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    property_id: Mapped[str] = mapped_column(ForeignKey("properties.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    enrollment_token_hash: Mapped[str | None] = mapped_column(String(64))
    enrollment_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    enrollment_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    enrolled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    agent_version: Mapped[str | None] = mapped_column(String(40))
    cert_serial: Mapped[str | None] = mapped_column(String(40))  # hex; serials exceed BIGINT
    cert_revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    seal_public_key: Mapped[str | None] = mapped_column(String(64))  # base64 X25519
    desired_version: Mapped[int] = mapped_column(Integer, default=0)
    desired_document: Mapped[bytes | None] = mapped_column(LargeBinary)
    desired_dirty: Mapped[bool] = mapped_column(Boolean, default=False)
    desired_refresh_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    desired_published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reported_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    property: Mapped[Property] = relationship()


class SmartLock(Base):
    """A lock at a property, driven by one of its gateways."""

    __tablename__ = "smart_locks"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    property_id: Mapped[str] = mapped_column(ForeignKey("properties.id"), index=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=True)
    kind: Mapped[LockKind] = mapped_column(StrEnumType(LockKind))
    device_ref: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Live status, from the gateway's reported state.
    lock_state: Mapped[LockState | None] = mapped_column(StrEnumType(LockState))
    battery_charge: Mapped[int | None] = mapped_column(Integer)
    battery_critical: Mapped[bool | None] = mapped_column(Boolean)
    door_state: Mapped[DoorState | None] = mapped_column(StrEnumType(DoorState))
    reachable: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status_reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    gateway: Mapped[Gateway] = relationship()


class Booking(Base):
    """A guest's stay; its guest code follows its dates."""

    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_property_id_check_in", "property_id", "check_in"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    property_id: Mapped[str] = mapped_column(ForeignKey("properties.id"))
    guest_name: Mapped[str] = mapped_column(String(120))
    guest_email: Mapped[str | None] = mapped_column(String(254))
    guest_phone: Mapped[str | None] = mapped_column(String(40))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    status: Mapped[BookingStatus] = mapped_column(
        StrEnumType(BookingStatus), default=BookingStatus.CONFIRMED
    )
    guest_count: Mapped[int] = mapped_column(Integer, default=1)
    registration_completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    codes: Mapped[list[AccessCode]] = relationship(
        back_populates="booking", order_by="AccessCode.created_at"
    )


class AccessCode(Base):
    """A PIN valid at a property's doors within a window."""

    __tablename__ = "access_codes"
    __table_args__ = (Index("ix_access_codes_property_id_status", "property_id", "status"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    property_id: Mapped[str] = mapped_column(ForeignKey("properties.id"))
    booking_id: Mapped[str | None] = mapped_column(ForeignKey("bookings.id"), index=True)
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    holder_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[CodeKind] = mapped_column(StrEnumType(CodeKind))
    label: Mapped[str] = mapped_column(String(40), default="")
    pin: Mapped[str] = mapped_column(String(12))
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[CodeStatus] = mapped_column(StrEnumType(CodeStatus), default=CodeStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handed_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # backup codes

    booking: Mapped[Booking | None] = relationship(back_populates="codes")


class Event(Base):
    """Something that happened at a property, stored once by the agent's event id."""

    __tablename__ = "events"
    __table_args__ = (
        # The feed reads each property's newest events first, ties broken by id.
        Index("ix_events_property_id_occurred_at_id", "property_id", "occurred_at", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)  # the agent's UUIDv7
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=True)
    property_id: Mapped[str] = mapped_column(ForeignKey("properties.id"))
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    clock_trusted: Mapped[bool] = mapped_column(Boolean)
    lock_id: Mapped[str | None] = mapped_column(ForeignKey("smart_locks.id"))
    code_id: Mapped[str | None] = mapped_column(ForeignKey("access_codes.id"))
    booking_id: Mapped[str | None] = mapped_column(ForeignKey("bookings.id"))
    task_id: Mapped[str | None] = mapped_column(String(64), index=True)
    method: Mapped[str | None] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EventCount(Base):
    """How many events a property has, kept by the ingest so the feed's total needs no COUNT."""

    __tablename__ = "event_counts"

    property_id: Mapped[str] = mapped_column(ForeignKey("properties.id"), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Invitation(Base):
    """An invitation to join a property with a role; only the token's SHA-256 is stored."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    property_id: Mapped[str] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(StrEnumType(Role))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    accepted_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Task(Base):
    """A job at a property (cleaning, maintenance, ...); its crew code follows its window."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_property_id_start_day", "property_id", "start_day"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    property_id: Mapped[str] = mapped_column(ForeignKey("properties.id"))
    booking_id: Mapped[str | None] = mapped_column(ForeignKey("bookings.id"))
    type: Mapped[TaskType] = mapped_column(StrEnumType(TaskType))
    title: Mapped[str] = mapped_column(String(120))
    notes: Mapped[str] = mapped_column(String(2000), default="")
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The property's local dates of the window, for the calendar (kept when the zone changes).
    start_day: Mapped[date] = mapped_column(Date)
    end_day: Mapped[date] = mapped_column(Date)
    status: Mapped[TaskStatus] = mapped_column(StrEnumType(TaskStatus), default=TaskStatus.PENDING)
    assigned_to: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    needs_access: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    assignee: Mapped[User | None] = relationship(foreign_keys=[assigned_to])


class Guest(Base):
    """A guest registered on a booking (online check-in)."""

    __tablename__ = "guests"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(120))
    document_type: Mapped[str] = mapped_column(String(16))
    document_number: Mapped[str] = mapped_column(String(40))
    nationality: Mapped[str] = mapped_column(String(2))
    birth_date: Mapped[date] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    registered_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CodeDelivery(Base):
    """A code's state on one lock, as the lock's gateway last reported it."""

    __tablename__ = "code_deliveries"

    code_id: Mapped[str] = mapped_column(ForeignKey("access_codes.id"), primary_key=True)
    lock_id: Mapped[str] = mapped_column(ForeignKey("smart_locks.id"), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=True)
    state: Mapped[DeliveryState] = mapped_column(StrEnumType(DeliveryState))
    error: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Integration(Base):
    """A Nuki or UniFi integration, bound to the gateway that reaches those locks on site."""

    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("type", "gateway_id", name="uq_integrations_type_gateway_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    type: Mapped[IntegrationType] = mapped_column(StrEnumType(IntegrationType))
    name: Mapped[str] = mapped_column(String(80))
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=True)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    gateway: Mapped[Gateway] = relationship()


class Command(Base):
    """A signed remote command sent to a gateway, and how it ended."""

    __tablename__ = "commands"

    id: Mapped[str] = mapped_column(ID, primary_key=True)  # UUIDv7, also the correlation data
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=True)
    property_id: Mapped[str] = mapped_column(ForeignKey("properties.id"))
    lock_id: Mapped[str] = mapped_column(ForeignKey("smart_locks.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[CommandState] = mapped_column(
        StrEnumType(CommandState), default=CommandState.PENDING
    )
    reason: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(200), default="")
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
