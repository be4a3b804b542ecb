"""The dashboard's login session: a cookie holding an API token, a CSRF token, flash messages.

The session cookie carries a token of the API's own token system (`services/auth.py`): logging
in is the same credential check as POST /auth/login, logging out revokes the token, and an
expired or revoked token ends the session. The cookie is HttpOnly and SameSite=Lax (Secure
behind HTTPS). State-changing forms carry a CSRF token derived from the session token
(HMAC-SHA256 keyed by it), so it needs no server-side storage and no shared secret between
workers, and a page on another site can neither read nor compute it. The login form, which has
no session yet, uses a double-submit token: a random value in a cookie and in the form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from cloud_api.context import AppContext
from cloud_api.deps import SessionDep
from cloud_api.errors import Unauthorized
from cloud_api.models import ApiToken, User
from cloud_api.services.auth import IssuedToken, authenticate

SESSION_COOKIE = "kasify_session"
LOGIN_COOKIE = "kasify_login"  # the login form's double-submit CSRF value
FLASH_COOKIE = "kasify_flash"
CSRF_FIELD = "csrf"
LOGIN_COOKIE_MAX_AGE_S = 3600  # a login form left open longer than this asks to reload
FLASH_MAX_AGE_S = 60  # a message shown on the next page, not on one opened much later
FLASH_MAX_CHARS = 400
CSRF_CONTEXT = b"kasify/dashboard/csrf/v1"


class LoginRequired(Exception):
    """A page needs a session and the request has none (or it ended); `reason` says why."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "login required")
        self.reason = reason


class CsrfRejected(Exception):
    """A state-changing form came without the right CSRF token."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in user of a dashboard request."""

    user: User
    token: ApiToken
    secret: str  # the session token in clear, from the cookie

    @property
    def csrf(self) -> str:
        """The CSRF token every form of this session carries."""
        return csrf_for(self.secret)

    @property
    def display_name(self) -> str:
        """How the header names the user."""
        return self.user.name or self.user.email


def csrf_for(secret: str) -> str:
    """The CSRF token of a session: an HMAC of a fixed context keyed by the session token."""
    return hmac.new(secret.encode(), CSRF_CONTEXT, hashlib.sha256).hexdigest()


def secure_cookies(request: Request) -> bool:
    """Whether cookies get the Secure flag: the request came over HTTPS, or the cloud's public
    address is HTTPS (a proxy in front terminates TLS)."""
    ctx: AppContext = request.app.state.ctx
    return request.url.scheme == "https" or ctx.settings.public_url.startswith("https://")


def session_secret(request: Request) -> str | None:
    """The session token from the cookie, if any."""
    return request.cookies.get(SESSION_COOKIE) or None


def get_viewer(request: Request, session: SessionDep) -> Viewer:
    """The logged-in user; LoginRequired when there is no session or it ended."""
    secret = session_secret(request)
    if secret is None:
        raise LoginRequired()
    try:
        user, token = authenticate(session, secret)
    except Unauthorized:
        raise LoginRequired("Your session has ended. Please log in again.") from None
    return Viewer(user, token, secret)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def check_csrf(viewer: Viewer, form: FormData) -> None:
    """Refuse a form whose CSRF token is not this session's."""
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, viewer.csrf):
        raise CsrfRejected()


def start_session(request: Request, response: Response, issued: IssuedToken) -> None:
    """Put a freshly issued token into the session cookie."""
    max_age = int((issued.row.expires_at - issued.row.created_at).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")


def end_session(request: Request, response: Response) -> None:
    """Remove the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request)
    )


def login_csrf(request: Request) -> tuple[str, bool]:
    """The login form's CSRF value, and whether it is new (to be set as a cookie)."""
    current = request.cookies.get(LOGIN_COOKIE)
    if current and len(current) == 43:  # token_urlsafe(32)
        return current, False
    return secrets.token_urlsafe(32), True


def set_login_cookie(request: Request, response: Response, value: str) -> None:
    """Set the login form's double-submit cookie (only sent back to /login)."""
    response.set_cookie(
        LOGIN_COOKIE,
        value,
        max_age=LOGIN_COOKIE_MAX_AGE_S,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


def check_login_csrf(request: Request, form: FormData) -> bool:
    """Whether the login form's token matches its cookie."""
    cookie = request.cookies.get(LOGIN_COOKIE)
    sent = form.get(CSRF_FIELD)
    return bool(cookie) and isinstance(sent, str) and hmac.compare_digest(sent, cookie or "")


@dataclass(frozen=True, slots=True)
class Flash:
    """A one-time message for the next page: `tone` is ok, error or info."""

    text: str
    tone: str = "ok"


def set_flash(request: Request, response: Response, flash: Flash) -> None:
    """Show `flash` on the next page this browser loads."""
    body = json.dumps({"t": flash.text[:FLASH_MAX_CHARS], "k": flash.tone}).encode()
    response.set_cookie(
        FLASH_COOKIE,
        base64.urlsafe_b64encode(body).decode(),
        max_age=FLASH_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


def read_flash(request: Request) -> Flash | None:
    """The pending flash message, if any (the page that shows it clears the cookie)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(raw.encode()))
        text, tone = body["t"], body["k"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    if not isinstance(text, str) or tone not in ("ok", "error", "info"):
        return None
    return Flash(text[:FLASH_MAX_CHARS], tone)


def clear_flash(response: Response) -> None:
    """Forget a flash message that has been shown."""
    response.delete_cookie(FLASH_COOKIE, path="/")


def token_ttl(ctx: AppContext) -> timedelta:
    """How long a dashboard session lasts: as long as an API token."""
    return timedelta(days=ctx.settings.api_token_ttl_days)
