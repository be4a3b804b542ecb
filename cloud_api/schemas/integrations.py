"""Integrations: a Nuki or UniFi system reached on site by one gateway, and what it can reach.

The "reachable locks / doors" listings keep the Kasify API's snake_case shapes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictStr, StringConstraints

from cloud_api.models import IntegrationType
from cloud_api.schemas.common import RequestModel, ResponseModel, ShortName, UpdateModel

GatewayRef = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]


class IntegrationStatus(StrEnum):
    """Whether the integration's gateway is there to reach the locks."""

    ONLINE = "online"
    OFFLINE = "offline"
    UNAUTHORIZED = "unauthorized"


class IntegrationCreate(RequestModel):
    """A new integration, bound to the gateway that reaches those locks."""

    name: ShortName
    gateway_id: GatewayRef = Field(description="The gateway at the property that reaches them")


class IntegrationUpdate(UpdateModel):
    """Changes to an integration."""

    name: ShortName | None = None
    gateway_id: GatewayRef | None = None


class IntegrationPublic(ResponseModel):
    """An integration."""

    id: str
    type: IntegrationType
    name: str
    gateway_id: str
    property_id: str
    status: IntegrationStatus
    created_at: datetime
    updated_at: datetime


class IntegrationsResponse(ResponseModel):
    """Integrations of every type, told apart by `type`."""

    integrations: list[IntegrationPublic]


class AssignedProperty(BaseModel):
    """The Kasify property (and smart lock record) a device is already assigned to."""

    property_id: str
    property_name: str
    smartlock_record_id: str


class AvailableNukiSmartlock(BaseModel):
    """A Nuki lock the gateway can reach."""

    smartlock_id: int = Field(description="The Nuki id as a number (its hex form is device_ref)")
    device_ref: str = Field(description="The Nuki id in hex, as a smart lock's deviceRef")
    name: str
    lock_state: int = Field(
        description="Nuki lock state: 1 locked, 2 unlocking, 3 unlocked, 4 locking, "
        "5 unlatched, 254 motor blocked, 255 undefined"
    )
    battery_charge: int | None
    battery_critical: bool | None
    offline: bool
    assigned_property: AssignedProperty | None


class NukiSmartlocksResponse(BaseModel):
    """Nuki locks reachable through the integration's gateway."""

    smartlocks: list[AvailableNukiSmartlock]
    nuki_status: Literal["online", "unauthorized", "unreachable"] = Field(
        description="online: fresh from the gateway; unreachable: the gateway is offline and "
        "this is its last report; unauthorized: the gateway is not enrolled"
    )


class UnifiSmartlock(BaseModel):
    """A UniFi Access door the gateway's controller offers."""

    floor_id: str
    door_id: str
    name: str
    assigned_property: AssignedProperty | None


class UnifilocksResponse(BaseModel):
    """UniFi doors reachable through the integration's gateway."""

    smartlocks: list[UnifiSmartlock]
