"""The activity feed and health."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from cloud_api.schemas.common import Page, ResponseModel
from sync_protocol.models import CodeKind, Scalar


class ActivityPublic(ResponseModel):
    """One event at a property, with the names the host knows it by."""

    id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    clock_trusted: bool
    method: str | None
    result: str | None
    details: dict[str, Scalar]
    property_id: str
    property_name: str
    gateway_id: str
    gateway_name: str
    lock_id: str | None
    lock_name: str | None
    code_id: str | None
    code_kind: CodeKind | None
    booking_id: str | None
    guest_name: str | None
    task_id: str | None


class ActivityPage(Page):
    """A page of the activity feed, newest first."""

    activities: list[ActivityPublic]


class HealthPublic(ResponseModel):
    """Whether the service and its dependencies answer."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    mqtt: Literal["connected", "disconnected", "disabled"]
    ingest: bool = Field(description="This process ingests what gateways publish")
