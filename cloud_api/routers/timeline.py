"""The calendar, the upcoming timeline and the activity feed."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from cloud_api.deps import CurrentUser, PageDep, SessionDep
from cloud_api.errors import ERROR_RESPONSES, FORBIDDEN, InvalidInput
from cloud_api.presenters import calendar_task
from cloud_api.schemas.activity import ActivityPage
from cloud_api.schemas.calendar import (
    CalendarBooking,
    CalendarEvent,
    CalendarEventType,
    CalendarPage,
    TimelineDay,
    TimelineEntry,
    TimelineEntryType,
    TimelinePublic,
)
from cloud_api.schemas.common import EARLIEST_DATE, LATEST_DATE
from cloud_api.services import calendar as service
from cloud_api.services.activity import activity_feed

router = APIRouter(tags=["Calendar"], responses=ERROR_RESPONSES)
timeline_router = APIRouter(tags=["Timeline"], responses=ERROR_RESPONSES)
MAX_TIMELINE_DAYS = 60


def _event(item: service.CalendarItem) -> CalendarEvent:
    booking = item.booking
    task = item.task
    return CalendarEvent(
        id=item.id,
        property_id=item.prop.id,
        property_name=item.prop.name,
        from_=item.start,
        to=item.end,
        type=CalendarEventType(item.type),
        title=booking.guest_name if booking is not None else (task.title if task else ""),
        created_at=item.created_at,
        updated_at=item.updated_at,
        booking=CalendarBooking(
            id=booking.id,
            channel_id=booking.channel_id,
            guest_name=booking.guest_name,
            guest_count=booking.guest_count,
        )
        if booking is not None
        else None,
        task=calendar_task(task) if task is not None else None,
    )


def _range(start: date | None, end: date | None) -> None:
    for name, value in (("from", start), ("to", end)):
        if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise InvalidInput(name, f"must be between {EARLIEST_DATE} and {LATEST_DATE}")
    if start is not None and end is not None and end < start:
        raise InvalidInput("to", f"must not be before from ({start})")


@router.get("/properties/{property_id}/calendar", response_model=CalendarPage)
def property_calendar(
    property_id: str,
    user: CurrentUser,
    session: SessionDep,
    paging: PageDep,
    start: Annotated[
        date | None, Query(alias="from", description="Events ending on or after")
    ] = None,
    end: Annotated[
        date | None, Query(alias="to", description="Events starting on or before")
    ] = None,
) -> CalendarPage:
    """Bookings and tasks of a property, earliest first. Contractors see only their tasks."""
    _range(start, end)
    items, total = service.calendar(
        session, user, paging.page, paging.size, property_id=property_id, start=start, end=end
    )
    return CalendarPage(
        events=[_event(i) for i in items], page=paging.page, size=paging.size, total=total
    )


@router.get("/calendar", response_model=CalendarPage)
def upcoming_calendar(user: CurrentUser, session: SessionDep, paging: PageDep) -> CalendarPage:
    """Upcoming events of every property the caller belongs to, earliest first; at contractor
    properties only the caller's tasks."""
    items, total = service.calendar(session, user, paging.page, paging.size)
    return CalendarPage(
        events=[_event(i) for i in items], page=paging.page, size=paging.size, total=total
    )


@timeline_router.get("/timeline", response_model=TimelinePublic, responses=FORBIDDEN)
def upcoming_timeline(
    user: CurrentUser,
    session: SessionDep,
    days: Annotated[
        int, Query(ge=1, le=MAX_TIMELINE_DAYS, description="How many days from today")
    ] = 7,
) -> TimelinePublic:
    """Check-ins, check-outs and tasks from today on, grouped by each property's local day."""
    first, last, grouped, truncated = service.timeline(session, user, days)
    return TimelinePublic(
        from_=first,
        to=last,
        truncated=truncated,
        days=[
            TimelineDay(
                date=day,
                entries=[
                    TimelineEntry(
                        type=TimelineEntryType(item.type),
                        at=item.at,
                        local_time=item.local_time,
                        property_id=item.prop.id,
                        property_name=item.prop.name,
                        booking_id=item.booking.id if item.booking else None,
                        guest_name=item.booking.guest_name if item.booking else None,
                        task=calendar_task(item.task) if item.task else None,
                    )
                    for item in items
                ],
            )
            for day, items in grouped.items()
        ],
    )


@timeline_router.get("/timeline/activity", response_model=ActivityPage)
def list_activity(user: CurrentUser, session: SessionDep, paging: PageDep) -> ActivityPage:
    """Events at the caller's properties (entries, denials, battery alerts, codes that failed to
    set, gateways going offline), newest first; contractors see those of their tasks."""
    entries, total = activity_feed(session, user, paging.page, paging.size)
    return ActivityPage(activities=entries, page=paging.page, size=paging.size, total=total)
