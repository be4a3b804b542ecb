"""The calendar (bookings and tasks, paginated) and the upcoming timeline, grouped by day."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import Field

from cloud_api.models import TaskStatus, TaskType
from cloud_api.schemas.common import Page, ResponseModel


class CalendarEventType(StrEnum):
    """What a calendar event is: a booking, or a task of some type."""

    BOOKING = "booking"
    CLEANING = "cleaning"
    MAINTENANCE = "maintenance"
    INSPECTION = "inspection"
    OTHER = "other"


class CalendarBooking(ResponseModel):
    """The booking behind a calendar event."""

    id: str
    channel_id: str | None
    guest_name: str
    guest_count: int


class CalendarTask(ResponseModel):
    """The task behind a calendar event."""

    id: str
    type: TaskType
    title: str
    status: TaskStatus
    assigned_to: str | None
    assigned_to_name: str | None


class CalendarEvent(ResponseModel):
    """A booking or a task on the property's calendar (local dates)."""

    id: str
    property_id: str
    property_name: str
    from_: date = Field(alias="from")
    to: date
    type: CalendarEventType
    title: str
    created_at: datetime
    updated_at: datetime
    booking: CalendarBooking | None
    task: CalendarTask | None


class CalendarPage(Page):
    """A page of calendar events, earliest first."""

    events: list[CalendarEvent]


class TimelineEntryType(StrEnum):
    """What happens at a timeline entry."""

    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"
    TASK = "task"


class TimelineEntry(ResponseModel):
    """One thing happening at a property: a check-in, a check-out or a task."""

    type: TimelineEntryType
    at: datetime = Field(description="When, in UTC")
    local_time: str = Field(description="When, as the property's local time of day (HH:MM)")
    property_id: str
    property_name: str
    booking_id: str | None
    guest_name: str | None
    task: CalendarTask | None


class TimelineDay(ResponseModel):
    """The entries of one local day, in time order."""

    date: date
    entries: list[TimelineEntry]


class TimelinePublic(ResponseModel):
    """What comes up in the next days, grouped by day (each property's local date)."""

    from_: date = Field(alias="from")
    to: date
    days: list[TimelineDay] = Field(description="Only days with entries")
    truncated: bool = Field(description="More entries exist than the response carries")
