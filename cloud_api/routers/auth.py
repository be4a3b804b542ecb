"""Registration, login, logout and the caller's account."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response, status

from cloud_api.deps import AuthDep, CtxDep, SessionDep, client_address
from cloud_api.errors import ERROR_RESPONSES, ErrorPublic, described
from cloud_api.presenters import account_public
from cloud_api.schemas.auth import (
    AccountPublic,
    AccountUpdate,
    LoginCreate,
    RegisterCreate,
    TokenPublic,
)
from cloud_api.services import auth as service
from cloud_api.services.auth import IssuedToken

router = APIRouter(tags=["Auth"], responses=ERROR_RESPONSES)


def _token_public(issued: IssuedToken) -> TokenPublic:
    return TokenPublic(
        token=issued.token,
        expires_at=issued.row.expires_at,
        user=account_public(issued.row.user),
    )


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenPublic,
    responses={409: {"model": ErrorPublic, "description": "Email already registered"}},
)
def register(body: RegisterCreate, session: SessionDep, ctx: CtxDep) -> TokenPublic:
    """Create an account; the response carries a bearer token."""
    ttl = timedelta(days=ctx.settings.api_token_ttl_days)
    return _token_public(service.register(session, body, ttl))


@router.post(
    "/auth/login",
    response_model=TokenPublic,
    responses=described(429, "Too many failed logins for this account; see Retry-After"),
)
def login(body: LoginCreate, request: Request, session: SessionDep, ctx: CtxDep) -> TokenPublic:
    """Exchange email and password for a bearer token.

    After repeated wrong passwords for an account, logins to it are refused with 429 for a
    while (the Retry-After header says how long)."""
    ttl = timedelta(days=ctx.settings.api_token_ttl_days)
    issued = service.login(
        session, body, ttl, throttle=ctx.login_throttle, address=client_address(request)
    )
    return _token_public(issued)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout(auth: AuthDep, session: SessionDep) -> Response:
    """Revoke the presented token."""
    service.revoke_token(session, auth.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/account", response_model=AccountPublic, tags=["Account"])
def get_account(auth: AuthDep) -> AccountPublic:
    """The caller's account."""
    return account_public(auth.user)


@router.put(
    "/account",
    response_model=AccountPublic,
    tags=["Account"],
    responses={409: {"model": ErrorPublic, "description": "Email belongs to another account"}},
)
def update_account(body: AccountUpdate, auth: AuthDep, session: SessionDep) -> AccountPublic:
    """Change name, email or password (the last two need `currentPassword`)."""
    return account_public(service.update_account(session, auth.user, auth.token, body))
