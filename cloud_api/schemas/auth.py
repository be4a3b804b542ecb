"""Registration, login and the caller's account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import StrictStr, StringConstraints

from cloud_api.schemas.common import Email, RequestModel, ResponseModel, UpdateModel

Password = Annotated[StrictStr, StringConstraints(min_length=8, max_length=128)]
AccountName = Annotated[StrictStr, StringConstraints(max_length=120)]


class RegisterCreate(RequestModel):
    """A new account."""

    email: Email
    password: Password
    name: AccountName = ""


class LoginCreate(RequestModel):
    """Credentials exchanged for a bearer token."""

    email: Annotated[StrictStr, StringConstraints(min_length=1, max_length=254)]
    password: Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)]


class AccountPublic(ResponseModel):
    """The caller's account."""

    id: str
    email: str
    name: str
    created_at: datetime
    updated_at: datetime


class AccountUpdate(UpdateModel):
    """Changes to the caller's account; email and password need `currentPassword`."""

    name: AccountName | None = None
    email: Email | None = None
    password: Password | None = None
    current_password: Annotated[StrictStr, StringConstraints(max_length=128)] | None = None

    nullable: ClassVar[frozenset[str]] = frozenset({"current_password"})


class TokenPublic(ResponseModel):
    """A bearer token: send it as `Authorization: Bearer <token>`."""

    token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name
    expires_at: datetime
    user: AccountPublic
