"""The dashboard's pages: log in and out, properties overview, property page, gateways."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from cloud_api.dashboard.render import page
from cloud_api.dashboard.routing import DashboardRoute, see_other
from cloud_api.dashboard.session import (
    Flash,
    LoginRequired,
    Viewer,
    ViewerDep,
    check_csrf,
    check_login_csrf,
    end_session,
    get_viewer,
    login_csrf,
    set_flash,
    set_login_cookie,
    start_session,
    token_ttl,
)
from cloud_api.dashboard.views import (
    FEED_SIZE,
    BookingForm,
    gateways_context,
    new_booking_form,
    overview_context,
    property_context,
)
from cloud_api.deps import CtxDep, SessionDep, client_address
from cloud_api.errors import TooManyRequests, Unauthorized
from cloud_api.schemas.auth import LoginCreate
from cloud_api.services import auth as auth_service
from cloud_api.services.access import Permission, property_access
from cloud_api.services.activity import property_activity

ACTIVITY_PAGE_SIZE = 50

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def safe_next(value: object) -> str:
    """Where to go after logging in: a path on this site, never another site."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value[:500]
    return "/"


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    """Every property at a glance; what needs attention first."""
    context = overview_context(session, viewer)
    return page(
        request,
        "overview.html",
        viewer=viewer,
        nav="overview",
        stream=f"/app/stream?since={context['overview_stamp']}",
        **context,
    )


def property_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    property_id: str,
    form: BookingForm | None = None,
    status_code: int = 200,
) -> Response:
    """The property page, optionally with the new-booking form as the user filled it."""
    context = property_context(session, viewer, property_id)
    stamp = context["stamp"]
    stream = f"/app/properties/{property_id}/stream?since={stamp}" if stamp else None
    return page(
        request,
        "property.html",
        status_code=status_code,
        viewer=viewer,
        nav="overview",
        stream=stream,
        csrf=viewer.csrf,
        form=form or new_booking_form(context["prop"]),
        feed_size=FEED_SIZE,
        **context,
    )


@router.get("/app/properties/{property_id}", response_class=HTMLResponse)
def show_property(
    property_id: str, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    """A property: attention, locks, upcoming bookings and codes, crew codes, live activity."""
    return property_page(request, session, viewer, property_id)


@router.get("/app/properties/{property_id}/activity", response_class=HTMLResponse)
def show_activity(
    property_id: str,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    before: str | None = None,
) -> Response:
    """A property's whole activity, newest first, a page at a time (older: `before` an event)."""
    prop, role = property_access(session, viewer.user, property_id, Permission.SEE)
    entries = property_activity(
        session, viewer.user, prop.id, ACTIVITY_PAGE_SIZE + 1, before=before
    )
    return page(
        request,
        "activity.html",
        viewer=viewer,
        nav="overview",
        prop=prop,
        role=role,
        feed=entries[:ACTIVITY_PAGE_SIZE],
        older=entries[ACTIVITY_PAGE_SIZE - 1].id if len(entries) > ACTIVITY_PAGE_SIZE else None,
        paged=before is not None,
    )


def gateways_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    error: str | None = None,
    chosen: str | None = None,
    name: str = "",
    status_code: int = 200,
) -> Response:
    """The gateways page, optionally with the add form's error."""
    return page(
        request,
        "gateways.html",
        status_code=status_code,
        viewer=viewer,
        nav="gateways",
        csrf=viewer.csrf,
        error=error,
        chosen=chosen,
        name=name,
        **gateways_context(session, viewer),
    )


@router.get("/app/gateways", response_class=HTMLResponse)
def show_gateways(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    """Gateways: status, version, uptime, clock, outbox, last seen; add one."""
    return gateways_page(request, session, viewer)


def login_page(
    request: Request, *, next_path: str, email: str = "", error: str | None, status_code: int
) -> Response:
    """The login form, with a fresh double-submit CSRF cookie when needed."""
    token, new = login_csrf(request)
    response = page(
        request,
        "login.html",
        status_code=status_code,
        csrf=token,
        next=next_path,
        email=email,
        error=error,
    )
    if new:
        set_login_cookie(request, response, token)
    return response


@router.get("/login", response_class=HTMLResponse)
def show_login(request: Request, session: SessionDep, next: str = "/") -> Response:
    """The login form; someone already logged in goes straight on."""
    try:
        get_viewer(request, session)
    except LoginRequired:
        return login_page(request, next_path=safe_next(next), error=None, status_code=200)
    return see_other(safe_next(next))


async def read_form(request: Request) -> FormData:
    """The posted form (URL-encoded)."""
    return await request.form()


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, ctx: CtxDep) -> Response:
    """Check email and password exactly as POST /auth/login does; start a session."""
    form = await read_form(request)
    next_path = safe_next(form.get("next"))
    email = str(form.get("email") or "").strip()
    if not check_login_csrf(request, form):
        return login_page(
            request,
            next_path=next_path,
            email=email,
            error="The login form had expired. Please try again.",
            status_code=400,
        )
    try:
        data = LoginCreate.model_validate({"email": email, "password": form.get("password")})
    except ValidationError:
        return login_page(
            request,
            next_path=next_path,
            email=email,
            error="Enter your email and your password.",
            status_code=400,
        )

    def check() -> auth_service.IssuedToken:
        with ctx.db.session() as session:
            return auth_service.login(
                session,
                data,
                token_ttl(ctx),
                throttle=ctx.login_throttle,
                address=client_address(request),
            )

    try:
        issued = await run_in_threadpool(check)
    except TooManyRequests as exc:
        minutes = max(1, -(-exc.retry_after_s // 60))
        return login_page(
            request,
            next_path=next_path,
            email=email,
            error=(
                "Too many wrong passwords for this account. For your safety, logging in is "
                f"paused: try again in {minutes} minute{'s' if minutes > 1 else ''}."
            ),
            status_code=429,
        )
    except Unauthorized:
        return login_page(
            request,
            next_path=next_path,
            email=email,
            error="Email or password is wrong.",
            status_code=401,
        )
    response = see_other(next_path)
    start_session(request, response, issued)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: CtxDep) -> Response:
    """Revoke the session's token and forget the cookie."""
    form = await read_form(request)

    def revoke() -> None:
        with ctx.db.session() as session:
            viewer = get_viewer(request, session)
            check_csrf(viewer, form)
            auth_service.revoke_token(session, viewer.token)

    await run_in_threadpool(revoke)
    response = see_other("/login")
    end_session(request, response)
    set_flash(request, response, Flash("You are logged out.", "info"))
    return response
