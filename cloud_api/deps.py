"""FastAPI dependencies: the app context, a database session, the caller, pagination."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from cloud_api.context import AppContext
from cloud_api.errors import Unauthorized
from cloud_api.models import ApiToken, User
from cloud_api.schemas.common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from cloud_api.services.auth import authenticate


async def get_ctx(request: Request) -> AppContext:
    """The app's shared state."""
    return cast(AppContext, request.app.state.ctx)


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def client_address(request: Request) -> str:
    """The caller's address (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    return request.client.host if request.client is not None else "unknown"


def get_session(ctx: CtxDep) -> Iterator[Session]:
    """One session per request; services commit, anything uncommitted is rolled back."""
    with ctx.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="opaque",
    description="A token from POST /auth/login or /auth/register",
)


@dataclass(frozen=True, slots=True)
class Auth:
    """The authenticated caller and the token they presented."""

    user: User
    token: ApiToken


def get_auth(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Auth:
    """Authenticate the bearer token; 401 says what is wrong."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized(
            "missing bearer token: log in with POST /auth/login and send "
            "'Authorization: Bearer <token>'"
        )
    user, token = authenticate(session, credentials.credentials)
    return Auth(user, token)


AuthDep = Annotated[Auth, Depends(get_auth)]


async def get_user(auth: AuthDep) -> User:
    """The authenticated user."""
    return auth.user


CurrentUser = Annotated[User, Depends(get_user)]


def get_user_briefly(
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    """The authenticated user, from a session closed at once: for async routes that do their
    database work in their own short sessions (on SQLite a session open for the whole request
    would hold the write lock they need)."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized(
            "missing bearer token: log in with POST /auth/login and send "
            "'Authorization: Bearer <token>'"
        )
    with ctx.db.session() as session:
        user, _ = authenticate(session, credentials.credentials)
        session.expunge(user)
        session.commit()
    return user


BriefUser = Annotated[User, Depends(get_user_briefly)]


@dataclass(frozen=True, slots=True)
class PageParams:
    """Zero-based page and page size."""

    page: int
    size: int


async def get_page(
    page: Annotated[int, Query(ge=0, description="Zero-based page index")] = 0,
    size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size (max {MAX_PAGE_SIZE})")
    ] = DEFAULT_PAGE_SIZE,
) -> PageParams:
    """Pagination query parameters."""
    return PageParams(page, size)


PageDep = Annotated[PageParams, Depends(get_page)]
