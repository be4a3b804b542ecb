"""Accounts, password hashing and opaque bearer tokens."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud_api.db import utcnow
from cloud_api.errors import Conflict, InvalidInput, Unauthorized
from cloud_api.models import ApiToken, User
from cloud_api.schemas.auth import AccountUpdate, LoginCreate, RegisterCreate
from cloud_api.services.login_throttle import LoginThrottle

# scrypt at libsodium's "interactive" cost: ~16 MiB and ~40 ms per hash.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
HASH_BYTES = 32
SALT_BYTES = 16
TOKEN_PREFIX = "kas_"  # noqa: S105 - lets secret scanners recognise a leaked token


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=HASH_BYTES
    )


def hash_password(password: str) -> str:
    """A salted scrypt hash with its parameters, for storage."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a stored hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


@functools.cache
def _dummy_hash() -> str:
    return hash_password("equalises the time of a login with an unknown email")


def token_digest(token: str) -> str:
    """What we store for a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token in clear (returned once) and its row."""

    token: str
    row: ApiToken


def issue_token(session: Session, user: User, ttl: timedelta) -> IssuedToken:
    """A new bearer token for `user`."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=token_digest(token), expires_at=utcnow() + ttl)
    session.add(row)
    return IssuedToken(token, row)


def register(session: Session, data: RegisterCreate, ttl: timedelta) -> IssuedToken:
    """Create an account and log it in."""
    if session.scalar(select(User.id).where(User.email == data.email)) is not None:
        raise Conflict(f"an account with email {data.email} already exists; log in instead")
    user = User(email=data.email, name=data.name, password_hash=hash_password(data.password))
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"an account with email {data.email} already exists; log in instead"
        ) from None
    issued = issue_token(session, user, ttl)
    session.commit()
    return issued


def login(
    session: Session,
    data: LoginCreate,
    ttl: timedelta,
    *,
    throttle: LoginThrottle,
    address: str,
) -> IssuedToken:
    """Exchange email and password for a token; the same 401 for unknown email or wrong password.

    Repeated failures for an account are refused with TooManyRequests before the password is
    even checked (the same for accounts that exist and those that do not)."""
    throttle.check(data.email, address)
    user = session.scalar(select(User).where(User.email == data.email.strip().lower()))
    stored = user.password_hash if user is not None else _dummy_hash()
    if not verify_password(data.password, stored) or user is None:
        throttle.failed(data.email, address)
        raise Unauthorized("email or password is wrong")
    throttle.succeeded(data.email, address)
    issued = issue_token(session, user, ttl)
    session.commit()
    return issued


def authenticate(session: Session, token: str) -> tuple[User, ApiToken]:
    """The user a bearer token belongs to; raise Unauthorized saying what is wrong with it."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None:
        raise Unauthorized("unknown bearer token; log in again with POST /auth/login")
    if row.revoked_at is not None:
        raise Unauthorized("this bearer token was revoked; log in again with POST /auth/login")
    if row.expires_at <= utcnow():
        raise Unauthorized("this bearer token has expired; log in again with POST /auth/login")
    return row.user, row


def revoke_token(session: Session, token: ApiToken) -> None:
    """Revoke one token (log out)."""
    token.revoked_at = utcnow()
    session.commit()


def update_account(session: Session, user: User, token: ApiToken, data: AccountUpdate) -> User:
    """Apply account changes; a new email or password needs the current password."""
    changes = data.changes()
    changes.pop("current_password", None)
    sensitive = {"email", "password"} & changes.keys()
    if sensitive and not (
        data.current_password and verify_password(data.current_password, user.password_hash)
    ):
        raise InvalidInput(
            "currentPassword",
            f"changing {' and '.join(sorted(sensitive))} needs your current password",
        )
    if "email" in changes and changes["email"] != user.email:
        taken = session.scalar(select(User.id).where(User.email == changes["email"]))
        if taken is not None:
            raise Conflict(f"email {changes['email']} belongs to another account")
        user.email = changes["email"]
    if "name" in changes:
        user.name = changes["name"]
    if "password" in changes:
        user.password_hash = hash_password(changes["password"])
        # A new password logs out every other session.
        session.execute(
            update(ApiToken)
            .where(
                ApiToken.user_id == user.id,
                ApiToken.id != token.id,
                ApiToken.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
    user.updated_at = utcnow()
    session.commit()
    return user
