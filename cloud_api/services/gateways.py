"""Gateways: create with a one-time enrollment token, enroll, read, delete (revoke)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cloud_api.db import Database, new_id, utcnow
from cloud_api.errors import InvalidInput, NotFound, Unauthorized
from cloud_api.models import Gateway, Integration, Membership, Property, Role, SmartLock, User
from cloud_api.pki import CertificateAuthority, CsrRejected, cert_pem
from cloud_api.schemas.gateways import EnrollRequest, GatewayCreate
from cloud_api.services.access import Permission, require_property, roles_with
from cloud_api.services.changes import gateways_changed

TOKEN_SEPARATOR = "."  # noqa: S105 - token = <gateway id>.<secret>; ids and token_urlsafe never contain "."
SEAL_KEY_BYTES = 32


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_gateway(
    session: Session, user: User, property_id: str, data: GatewayCreate, token_ttl: timedelta
) -> tuple[Gateway, str]:
    """A new gateway awaiting enrollment, and its one-time token in clear (shown once)."""
    prop = require_property(session, user, property_id, Permission.MANAGE)
    gateway_id = new_id()
    secret = secrets.token_urlsafe(32)
    gateway = Gateway(
        id=gateway_id,
        property_id=prop.id,
        name=data.name,
        enrollment_token_hash=_digest(secret),
        enrollment_expires_at=utcnow() + token_ttl,
    )
    session.add(gateway)
    session.commit()
    return gateway, f"{gateway_id}{TOKEN_SEPARATOR}{secret}"


def list_gateways(session: Session, user: User, property_id: str) -> list[Gateway]:
    """A property's gateways (deleted ones left out), oldest first."""
    require_property(session, user, property_id)
    return list(
        session.scalars(
            select(Gateway)
            .where(Gateway.property_id == property_id, Gateway.deleted_at.is_(None))
            .order_by(Gateway.created_at, Gateway.id)
        )
    )


def _load(session: Session, user: User, gateway_id: str, permission: Permission) -> Gateway:
    gateway = session.get(Gateway, gateway_id)
    message = f"gateway {gateway_id} not found"
    if gateway is None or gateway.deleted_at is not None:
        raise NotFound(message)
    require_property(session, user, gateway.property_id, permission, not_found=message)
    return gateway


def get_gateway(session: Session, user: User, gateway_id: str) -> Gateway:
    """One gateway the caller may see."""
    return _load(session, user, gateway_id, Permission.VIEW)


def delete_gateway(session: Session, user: User, gateway_id: str) -> bool:
    """Delete a gateway and its locks; return whether a certificate was revoked."""
    gateway = _load(session, user, gateway_id, Permission.MANAGE)
    now = utcnow()
    gateway.deleted_at = now
    gateway.enrollment_token_hash = None
    revoked = gateway.cert_serial is not None
    if revoked:
        gateway.cert_revoked_at = now
    session.execute(
        update(SmartLock)
        .where(SmartLock.gateway_id == gateway.id, SmartLock.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    session.execute(delete(Integration).where(Integration.gateway_id == gateway.id))
    if gateway.enrolled_at is not None:
        gateways_changed(session, [gateway.id])  # the publisher clears its retained desired state
    session.commit()
    return revoked


@dataclass(frozen=True, slots=True)
class Enrollment:
    """What a successful enrollment hands back."""

    gateway: Gateway
    certificate_pem: str


def _token_gateway(session: Session, token: str) -> Gateway:
    gateway_id, sep, secret = token.partition(TOKEN_SEPARATOR)
    if not sep or not gateway_id or not secret:
        raise Unauthorized(
            "malformed enrollment token; copy the whole token printed when the gateway was "
            "created (<gateway id>.<secret>)"
        )
    gateway = session.get(Gateway, gateway_id)
    if (
        gateway is None
        or gateway.deleted_at is not None
        or gateway.enrollment_token_hash is None
        or not hmac.compare_digest(gateway.enrollment_token_hash, _digest(secret))
    ):
        raise Unauthorized("unknown enrollment token; create the gateway again to get a new one")
    if gateway.enrollment_used_at is not None:
        used = f"{gateway.enrollment_used_at:%Y-%m-%d %H:%M}"
        raise Unauthorized(
            f"this enrollment token was already used at {used} UTC; delete and re-create the "
            "gateway to enroll again"
        )
    expires = gateway.enrollment_expires_at
    if expires is not None and expires <= utcnow():
        raise Unauthorized(
            f"this enrollment token expired at {expires:%Y-%m-%d %H:%M} UTC; delete and "
            "re-create the gateway for a fresh token"
        )
    return gateway


def _seal_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("sealPublicKey", "is not base64") from None
    if len(raw) != SEAL_KEY_BYTES:
        raise InvalidInput(
            "sealPublicKey", f"must be a {SEAL_KEY_BYTES}-byte X25519 public key, got {len(raw)}"
        )
    return base64.b64encode(raw).decode()


def enroll(session: Session, ca: CertificateAuthority, data: EnrollRequest) -> Enrollment:
    """Check the one-time token, sign the CSR, store the seal key; the token is then used up.

    A bad CSR or key is refused without using up the token, so the agent can retry.
    """
    gateway = _token_gateway(session, data.token)
    seal_key = _seal_key(data.seal_public_key)
    try:
        cert = ca.sign_csr(data.csr.encode(), expected_cn=gateway.id)
    except CsrRejected as exc:
        raise InvalidInput("csr", str(exc)) from None
    now = utcnow()
    claimed = session.execute(
        update(Gateway)
        .where(Gateway.id == gateway.id, Gateway.enrollment_used_at.is_(None))
        .values(enrollment_used_at=now)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise Unauthorized("this enrollment token was just used by another request")
    gateway.enrolled_at = now
    gateway.cert_serial = format(cert.serial_number, "x")
    gateway.seal_public_key = seal_key
    gateway.agent_version = data.agent_version
    gateways_changed(session, [gateway.id])
    session.commit()
    return Enrollment(gateway, cert_pem(cert).decode())


def count_gateways(db: Database) -> tuple[int, int]:
    """(online, enrolled) live gateways, for the metrics."""
    live = (Gateway.enrolled_at.is_not(None), Gateway.deleted_at.is_(None))
    with db.session() as session:
        enrolled = session.scalar(select(func.count()).where(*live)) or 0
        online = session.scalar(select(func.count()).where(*live, Gateway.online)) or 0
    return online, enrolled


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """What a gateway last reported about itself (None where it has not said)."""

    agent_version: str | None
    uptime_s: float | None
    clock_synchronized: bool | None
    clock_trusted: bool | None
    outbox_depth: int | None
    applied_version: int | None
    reported_at: datetime | None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def gateway_health(gateway: Gateway) -> GatewayHealth:
    """The gateway's own report (version, uptime, clock, outbox), read leniently: a report from
    an older or newer agent may lack a field or carry one we do not know."""
    reported = gateway.reported_state or {}
    clock = reported.get("clock")
    clock = clock if isinstance(clock, dict) else {}
    synchronized = clock.get("synchronized")
    trusted = clock.get("trusted")
    uptime = reported.get("uptime_s")
    return GatewayHealth(
        agent_version=gateway.agent_version,
        uptime_s=float(uptime) if isinstance(uptime, int | float) else None,
        clock_synchronized=synchronized if isinstance(synchronized, bool) else None,
        clock_trusted=trusted if isinstance(trusted, bool) else None,
        outbox_depth=_int(reported.get("outbox_depth")),
        applied_version=_int(reported.get("applied_version")),
        reported_at=gateway.reported_at,
    )


def visible_gateways(session: Session, user: User) -> list[tuple[Gateway, Property, Role]]:
    """Live gateways of every property whose gateways the caller may see, with the property and
    the caller's role there; by property name, then oldest first."""
    rows = session.execute(
        select(Gateway, Property, Membership.role)
        .join(Property, Property.id == Gateway.property_id)
        .join(Membership, Membership.property_id == Property.id)
        .where(
            Membership.user_id == user.id,
            Membership.role.in_([r.value for r in roles_with(Permission.VIEW)]),
            Property.deleted_at.is_(None),
            Gateway.deleted_at.is_(None),
        )
        .order_by(Property.name, Property.id, Gateway.created_at, Gateway.id)
    ).all()
    return [(gateway, prop, role) for gateway, prop, role in rows]


def codes_up_to_date(gateway: Gateway, health: GatewayHealth) -> bool:
    """Whether the gateway has applied the latest codes: nothing waits to be signed, and it
    reported the last signed version."""
    return (
        not gateway.desired_dirty
        and health.applied_version is not None
        and health.applied_version >= gateway.desired_version
    )


def enroll_command(public_url: str, token: str) -> str:
    """The exact line to run on the gateway to enroll it with its one-time token."""
    return f"kasify-agent enroll --cloud {public_url} --token {token}"
