"""Remote lock actions: the request, and the command that carries it to the gateway."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from cloud_api.models import CommandState
from cloud_api.schemas.common import RequestModel, ResponseModel


class LockActionCreate(RequestModel):
    """A remote action on a lock."""

    action: Literal["unlock", "lock", "unlatch"]


class CommandPublic(ResponseModel):
    """A command sent to a gateway and how it ended (pending until the gateway answers)."""

    id: str
    lock_id: str
    gateway_id: str
    action: str
    state: CommandState = Field(
        description="pending until the gateway answers; ok, failed or rejected then; expired "
        "when it never answered in time"
    )
    reason: str | None
    detail: str
    issued_at: datetime
    expires_at: datetime
    finished_at: datetime | None
