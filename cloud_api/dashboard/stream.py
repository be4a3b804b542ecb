"""Live updates over server-sent events, polled from the database.

Ingest may run in other processes, so nothing here waits for in-process notifications: each open
page has a watcher that reads its property's change stamp (`services/live.py`) about once a
second, in a short session on a worker thread. When the event count moved it sends the new
activity entries (`event: activity`, one rendered <li> each; the script places them and drops
duplicates); when the locks' or codes' stamp moved it re-renders the affected fragments with the
page's own templates (`event: attention|locks|bookings|crew`) and the script swaps them in. The
overview works the same way with one digest of everything it shows (`event: overview`).

Each message batch ends with `id: <stamp>`: a browser that reconnects sends it back as
Last-Event-ID and gets exactly what changed meanwhile. Streams end after STREAM_LIFETIME_S and
the browser reconnects at once (`retry:`), which bounds how long a stopping server waits for
open streams. Every poll re-checks the session and the membership, so a logout or a removal
ends the stream (`event: ended`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from cloud_api.context import AppContext
from cloud_api.dashboard.render import render
from cloud_api.dashboard.routing import DashboardRoute
from cloud_api.dashboard.session import Viewer, csrf_for, session_secret
from cloud_api.dashboard.views import FEED_SIZE, overview_context, property_context
from cloud_api.db import Database
from cloud_api.errors import NotFound, PermissionDenied, Unauthorized
from cloud_api.models import Property
from cloud_api.services.activity import property_activity
from cloud_api.services.auth import authenticate
from cloud_api.services.live import PropertyStamp, property_stamp

log = logging.getLogger(__name__)
router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

RETRY_MS = 1000  # the browser reconnects this soon after a stream ends or breaks
SESSION_ENDED = "Your session has ended. Log in again to see live updates."
NO_ACCESS = "You no longer have access to this property."


@dataclass
class StreamSettings:
    """Timing of the live streams (tests shorten them)."""

    poll_s: float = 1.0  # a host sees an entry within about a second of the ingest storing it
    overview_poll_s: float = 2.0  # the overview reads every property: poll it less often
    lifetime_s: float = 30.0  # then end; the browser reconnects with Last-Event-ID
    keepalive_s: float = 15.0  # a comment line keeps proxies from closing an idle stream


def stream_settings(request: Request) -> StreamSettings:
    """The app's stream timing."""
    found = getattr(request.app.state, "dashboard_stream", None)
    return found if isinstance(found, StreamSettings) else StreamSettings()


class StreamEnded(Exception):
    """The stream must stop: the session ended or access went away."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sse(event: str, data: str, event_id: str | None = None) -> str:
    """One server-sent event; multi-line data becomes several data lines."""
    lines = [f"event: {event}"]
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    return "\n".join(lines) + "\n\n"


def with_id(messages: list[tuple[str, str]], event_id: str) -> str:
    """A batch of (event, data) with the id on its last event: a reconnect after a partial
    batch then asks again from the previous id."""
    return "".join(
        sse(event, data, event_id if i == len(messages) - 1 else None)
        for i, (event, data) in enumerate(messages)
    )


class Watch(Protocol):
    """Something a stream polls."""

    def poll(self) -> str:
        """The SSE text for what changed since the last poll ('' for nothing)."""
        ...


class _Watch:
    def __init__(self, db: Database, secret: str | None) -> None:
        self.db = db
        self.secret = secret

    def _viewer(self, session: Session) -> Viewer:
        if not self.secret:
            raise StreamEnded(401, SESSION_ENDED)
        try:
            user, token = authenticate(session, self.secret)
        except Unauthorized:
            raise StreamEnded(401, SESSION_ENDED) from None
        return Viewer(user, token, self.secret)


class PropertyWatch(_Watch):
    """One property for one viewer: new activity entries and re-rendered fragments."""

    def __init__(
        self, db: Database, secret: str | None, property_id: str, since: PropertyStamp | None
    ) -> None:
        super().__init__(db, secret)
        self.property_id = property_id
        self.stamp = since
        self.seen: set[str] | None = None  # ids of the newest entries the browser has

    def poll(self) -> str:
        """Compare the stamp with the last one; render what moved."""
        with self.db.session() as session:
            viewer = self._viewer(session)
            try:
                stamp = property_stamp(session, viewer.user, self.property_id)
            except (NotFound, PermissionDenied):
                raise StreamEnded(404, NO_ACCESS) from None
            messages = self._entries(session, viewer, stamp) + self._fragments(
                session, viewer, stamp
            )
            self.stamp = stamp
        return with_id(messages, str(stamp)) if messages else ""

    def _entries(
        self, session: Session, viewer: Viewer, stamp: PropertyStamp
    ) -> list[tuple[str, str]]:
        moved = self.stamp is None or stamp.events != self.stamp.events
        if not moved and self.seen is not None:
            return []
        entries = property_activity(session, viewer.user, self.property_id, FEED_SIZE)
        # The first look after a page load: the page showed these already unless the count moved.
        fresh = [e for e in entries if self.seen is None or e.id not in self.seen] if moved else []
        self.seen = {e.id for e in entries}
        prop = session.get(Property, self.property_id)
        assert prop is not None
        return [
            ("activity", render("_feed_item.html", entry=entry, prop=prop))
            for entry in reversed(fresh)
        ]

    def _fragments(
        self, session: Session, viewer: Viewer, stamp: PropertyStamp
    ) -> list[tuple[str, str]]:
        base = self.stamp
        locks = base is None or stamp.locks != base.locks
        codes = base is None or stamp.codes != base.codes
        if not (locks or codes):
            return []
        context = property_context(session, viewer, self.property_id, with_feed=False)
        context["csrf"] = csrf_for(viewer.secret)
        names = ["attention"] + (["locks"] if locks else []) + ["bookings", "crew"]
        return [(name, render(f"_{name}.html", **context)) for name in names]


class OverviewWatch(_Watch):
    """Every property of one viewer: the overview body when anything on it changed."""

    def __init__(self, db: Database, secret: str | None, since: str | None) -> None:
        super().__init__(db, secret)
        self.stamp = since

    def poll(self) -> str:
        """Re-read the overview; send it when its digest moved."""
        with self.db.session() as session:
            viewer = self._viewer(session)
            context = overview_context(session, viewer)
            stamp = context["overview_stamp"]
            if stamp == self.stamp:
                return ""
            self.stamp = stamp
            return sse("overview", render("_overview_body.html", **context), stamp)


async def _events(
    first: str, watch: Watch, interval_s: float, settings: StreamSettings
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n" + first
    started = last_sent = time.monotonic()
    while time.monotonic() - started < settings.lifetime_s:
        await asyncio.sleep(interval_s)
        try:
            chunk = await run_in_threadpool(watch.poll)
        except StreamEnded as exc:
            yield sse("ended", exc.reason)
            return
        except (OperationalError, InterfaceError) as exc:
            log.warning("live update poll failed (will retry): %s", exc)
            chunk = ""
        if chunk:
            yield chunk
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= settings.keepalive_s:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()


async def _open(request: Request, watch: Watch, interval_s: float) -> Response:
    """Poll once now (a bad session or access answers with a plain status the browser's
    EventSource stops on), then stream."""
    try:
        first = await run_in_threadpool(watch.poll)
    except StreamEnded as exc:
        return PlainTextResponse(exc.reason, status_code=exc.status)
    return StreamingResponse(
        _events(first, watch, interval_s, stream_settings(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/app/properties/{property_id}/stream")
async def property_stream(
    property_id: str,
    request: Request,
    since: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Live updates of a property page."""
    ctx: AppContext = request.app.state.ctx
    baseline = PropertyStamp.parse(last_event_id or since)
    watch = PropertyWatch(ctx.db, session_secret(request), property_id, baseline)
    return await _open(request, watch, stream_settings(request).poll_s)


@router.get("/app/stream")
async def overview_stream(
    request: Request,
    since: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Live updates of the properties overview."""
    ctx: AppContext = request.app.state.ctx
    watch = OverviewWatch(ctx.db, session_secret(request), last_event_id or since)
    return await _open(request, watch, stream_settings(request).overview_poll_s)
