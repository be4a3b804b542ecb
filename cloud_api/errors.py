"""Domain errors raised by services, and how the API turns every error into JSON."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of the errors a caller can act on; `status` is the HTTP status it maps to."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    """The thing does not exist, or the caller may not know it exists."""

    status = 404


class Unauthorized(ServiceError):
    """Missing, wrong, expired or revoked credentials."""

    status = 401


class PermissionDenied(ServiceError):
    """The caller is a member but their role does not allow this."""

    status = 403


class Conflict(ServiceError):
    """The request contradicts the current state."""

    status = 409


class ServiceUnavailable(ServiceError):
    """A dependency (the broker) is not there right now; retrying later may work."""

    status = 503


class TooManyRequests(ServiceError):
    """Refused for now (e.g. too many failed logins); `retry_after_s` says when to try again."""

    status = 429

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class InvalidInput(ServiceError):
    """A field is well-formed but not acceptable; `field` names it as the client sent it."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ErrorPublic(BaseModel):
    """Every error body."""

    detail: str


class FieldError(BaseModel):
    """One invalid field."""

    field: str
    message: str


class ValidationErrorPublic(BaseModel):
    """A 422 body: a one-line summary plus each invalid field."""

    detail: str
    errors: list[FieldError]


def _field_name(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        reason = error.get("ctx", {}).get("error", "parse error")
        return f"the request body is not valid JSON ({reason})"
    if error.get("type") == "missing":
        return "is required"
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def validation_body(errors: list[FieldError]) -> dict[str, Any]:
    """The JSON of a 422 response."""
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    if len(errors) > 5:
        summary += f"; and {len(errors) - 5} more"
    return ValidationErrorPublic(detail=summary, errors=errors).model_dump()


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(field=_field_name(e.get("loc", ())), message=_message(e)) for e in exc.errors()
    ]
    return JSONResponse(validation_body(errors), status_code=422)


async def _on_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if isinstance(exc, InvalidInput):
        body = validation_body([FieldError(field=exc.field, message=exc.message)])
        return JSONResponse(body, status_code=exc.status)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)


BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's words for an unreadable body


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if exc.status_code == 400 and detail == BODY_PARSE_ERROR:
        message = (
            "the request body could not be read: send UTF-8 JSON with "
            "'Content-Type: application/json'"
        )
        return JSONResponse(validation_body([FieldError(field="body", message=message)]), 422)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse(
        {"detail": str(detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.error(
        "unhandled error %s on %s %s", incident, request.method, request.url.path, exc_info=exc
    )
    return JSONResponse(
        {"detail": f"internal error {incident}; it has been logged, please retry or report it"},
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error a JSON body with a message a person can act on."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


Responses = dict[int | str, dict[str, Any]]


def described(status: int, description: str) -> Responses:
    """An extra documented error response with the common body."""
    return {status: {"model": ErrorPublic, "description": description}}


FORBIDDEN = described(403, "Your role at the property may not change it")
ERROR_RESPONSES: Responses = {
    401: {"model": ErrorPublic, "description": "Missing, invalid, expired or revoked token"},
    404: {"model": ErrorPublic, "description": "Not found, or not a member of its property"},
    422: {"model": ValidationErrorPublic, "description": "Invalid request; each field says why"},
}
