"""Tasks at a property (cleaning, maintenance, ...) and the crew codes that follow them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from cloud_api.models import TaskStatus, TaskType
from cloud_api.schemas.bookings import AccessCodePublic
from cloud_api.schemas.common import (
    EARLIEST_DATE,
    LATEST_DATE,
    Name,
    Page,
    RequestModel,
    ResponseModel,
    UpdateModel,
    require_str,
)

MAX_TASK_DAYS = 31  # a crew code lives as long as its task: keep it bounded
ObjectId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
Notes = Annotated[StrictStr, StringConstraints(max_length=2000)]


def _in_range(value: datetime) -> datetime:
    if not EARLIEST_DATE <= value.date() <= LATEST_DATE:
        raise PydanticCustomError(
            "date_range", f"must be between {EARLIEST_DATE} and {LATEST_DATE}"
        )
    return value


TaskTime = Annotated[
    datetime,
    BeforeValidator(require_str("2030-07-05T11:00")),
    AfterValidator(_in_range),
    Field(description="ISO 8601 date and time; without an offset it is local time at the property"),
]


def check_window(starts_at: datetime, ends_at: datetime) -> str | None:
    """Why a task window is unacceptable, or None (compared as given: both naive or both aware)."""
    try:
        length = ends_at - starts_at
    except TypeError:
        return "give startsAt and endsAt both with an offset or both as local times"
    if length.total_seconds() <= 0:
        return "must be after startsAt"
    if length.days >= MAX_TASK_DAYS:
        return f"a task lasts less than {MAX_TASK_DAYS} days"
    return None


class TaskCreate(RequestModel):
    """A new task; unless `needsAccess` is false it gets a crew code for its window."""

    property_id: ObjectId
    type: TaskType = TaskType.CLEANING
    title: Name
    notes: Notes = ""
    starts_at: TaskTime
    ends_at: TaskTime
    assigned_to: ObjectId | None = Field(None, description="A member of the property")
    booking_id: ObjectId | None = Field(None, description="The stay the task belongs to")
    needs_access: StrictBool = Field(True, description="Issue a crew code for the task's window")

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if isinstance(starts_at, datetime):
            problem = check_window(starts_at, ends_at)
            if problem is not None:
                raise PydanticCustomError("task_window", problem)
        return ends_at


class TaskUpdate(UpdateModel):
    """Changes to a task: a new window moves its crew code, a new assignee gets a new PIN."""

    type: TaskType | None = None
    title: Name | None = None
    notes: Notes | None = None
    starts_at: TaskTime | None = None
    ends_at: TaskTime | None = None
    assigned_to: ObjectId | None = None
    booking_id: ObjectId | None = None
    needs_access: StrictBool | None = None

    nullable: ClassVar[frozenset[str]] = frozenset({"assigned_to", "booking_id"})


class TaskPublic(ResponseModel):
    """A task, its assignee and its crew code."""

    id: str
    property_id: str
    booking_id: str | None
    type: TaskType
    title: str
    notes: str
    starts_at: datetime
    ends_at: datetime
    status: TaskStatus
    assigned_to: str | None
    assigned_to_name: str | None
    needs_access: bool
    access_code: AccessCodePublic | None = Field(
        description="The active crew code (its PIN only for the assignee, owners and managers)"
    )
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TasksPage(Page):
    """A page of tasks, soonest first."""

    tasks: list[TaskPublic]
