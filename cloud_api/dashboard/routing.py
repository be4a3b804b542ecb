"""How dashboard routes answer when something goes wrong: HTML and words, never JSON.

The API's exception handlers (JSON bodies) stay as they are; dashboard routes use this route
class, which turns a missing session into a redirect to the login page and any error a service
raises into a page that says what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from cloud_api.dashboard.render import page
from cloud_api.dashboard.session import CsrfRejected, Flash, LoginRequired, Viewer, set_flash
from cloud_api.dashboard.words import say
from cloud_api.errors import NotFound, ServiceError

log = logging.getLogger(__name__)

TITLES = {400: "That did not work", 403: "Not allowed", 404: "Not found", 409: "That did not work"}


def see_other(url: str) -> RedirectResponse:
    """A 303 redirect (after a form post, the browser GETs the new page)."""
    return RedirectResponse(url, status_code=303)


def to_login(request: Request, reason: str | None) -> RedirectResponse:
    """Send the browser to the login page, back here afterwards."""
    target = request.url.path
    if request.method != "GET":
        target = "/"
    response = see_other(f"/login?next={quote(target, safe='/')}")
    if reason:
        set_flash(request, response, Flash(reason, "info"))
    return response


def error_page(
    request: Request,
    status: int,
    message: str,
    title: str | None = None,
    viewer: Viewer | None = None,
) -> Response:
    """A page that says what went wrong and links back to the properties."""
    return page(
        request,
        "error.html",
        status_code=status,
        viewer=viewer,
        title=title or TITLES.get(status, "That did not work"),
        message=message,
        back=None,
        back_label=None,
    )


class DashboardRoute(APIRoute):
    """An APIRoute whose errors become pages (or a redirect to the login page)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler with the dashboard's error handling."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return to_login(request, exc.reason)
            except CsrfRejected:
                return error_page(
                    request,
                    403,
                    "This form has expired (or came from another site). Go back, reload the "
                    "page and try again.",
                    "Form expired",
                )
            except NotFound as exc:
                return error_page(request, 404, say(exc, "this page"))
            except ServiceError as exc:
                return error_page(request, exc.status, say(exc))
            except RequestValidationError:
                return error_page(request, 400, "The request was incomplete. Please try again.")

        return guarded
