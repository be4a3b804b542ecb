"""Gateways, their enrollment, and the smart locks they drive."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints
from pydantic.alias_generators import to_camel

from cloud_api.schemas.common import RequestModel, ResponseModel, ShortName
from sync_protocol.models import DoorState, LockKind, LockState


class GatewayStatus(StrEnum):
    """Where a gateway is in its life."""

    AWAITING_ENROLLMENT = "awaiting_enrollment"
    ENROLLMENT_EXPIRED = "enrollment_expired"
    ENROLLED = "enrolled"


class GatewayCreate(RequestModel):
    """A new gateway at a property."""

    name: ShortName


class GatewayPublic(ResponseModel):
    """A gateway and what the cloud knows of its state."""

    id: str
    property_id: str
    name: str
    status: GatewayStatus
    enrollment_expires_at: datetime | None
    enrolled_at: datetime | None
    agent_version: str | None
    online: bool
    last_seen_at: datetime | None
    desired_version: int = Field(description="Version of the last desired state signed for it")
    applied_version: int | None = Field(description="Desired version the agent last reported")
    reported_at: datetime | None
    created_at: datetime


class GatewayCreated(GatewayPublic):
    """A new gateway with its one-time enrollment token (shown only here)."""

    enrollment_token: str
    enroll_command: str = Field(description="Run this on the gateway to enroll it")


class GatewaysList(ResponseModel):
    """A property's gateways."""

    gateways: list[GatewayPublic]


class EnrollRequest(BaseModel):
    """What an agent sends to enroll; unknown fields from newer agents are ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_alias=True, validate_by_name=False, extra="ignore"
    )

    token: Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
    csr: Annotated[StrictStr, StringConstraints(min_length=1, max_length=16_384)] = Field(
        description="PEM CSR, EC P-256, CN = gateway id"
    )
    seal_public_key: Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)] = Field(
        description="Base64 of the gateway's 32-byte X25519 public key"
    )
    agent_version: Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)]


class BrokerAddress(ResponseModel):
    """Where the agent connects with its certificate."""

    host: str
    port: int


class EnrollResponse(ResponseModel):
    """Everything an enrolled agent needs to join the broker and trust the cloud."""

    gateway_id: str
    property_id: str
    certificate: str = Field(description="PEM client certificate, CN = gateway id")
    ca_certificate: str = Field(description="PEM of the CA that signs the broker and gateways")
    broker: BrokerAddress
    verify_keys: list[str] = Field(description="Base64 Ed25519 keys that sign desired states")


class SmartLockCreate(RequestModel):
    """A lock to add to a property, driven by one of its gateways."""

    kind: LockKind
    device_ref: Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)] = Field(
        description="The device's reference for its driver (Nuki id, UniFi door id, relay no.)"
    )
    name: ShortName
    gateway_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]


class SmartLockPublic(ResponseModel):
    """A smart lock and its live status, as its gateway last reported it."""

    id: str
    property_id: str
    gateway_id: str
    kind: LockKind
    device_ref: str
    name: str
    lock_state: LockState = Field(description="unknown until the gateway reports the lock")
    battery_charge: int | None = Field(description="Battery percentage, when the lock tells")
    battery_critical: bool | None
    door_state: DoorState
    offline: bool = Field(description="The gateway is offline or cannot reach the lock")
    last_seen_at: datetime | None = Field(description="Last contact between gateway and lock")
    status_reported_at: datetime | None = Field(description="When the gateway reported this")
    created_at: datetime


class SmartLocksList(ResponseModel):
    """A property's smart locks."""

    smartlocks: list[SmartLockPublic]
