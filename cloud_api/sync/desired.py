"""Build and sign a gateway's desired state from the database."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nacl.public import PublicKey
from nacl.signing import SigningKey
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cloud_api.models import (
    AccessCode,
    Booking,
    BookingStatus,
    CodeStatus,
    Gateway,
    SmartLock,
)
from sync_protocol.codec import encode_desired
from sync_protocol.models import CodeKind, DesiredCode, DesiredState, LockSpec
from sync_protocol.sealing import seal_pin

LABEL_CHARS = 20  # DesiredCode.label limit


@dataclass(frozen=True, slots=True)
class SignedDesired:
    """A signed document and when it next needs rebuilding (a code enters or leaves)."""

    document: bytes
    version: int
    refresh_at: datetime
    codes: int


@dataclass(frozen=True, slots=True)
class CodeRow:
    """What a desired state needs of one access code."""

    id: str
    property_id: str
    kind: CodeKind
    pin: str
    starts_at: datetime | None
    ends_at: datetime | None
    booking_id: str | None
    task_id: str | None
    label: str
    registered: bool  # the booking's guests completed registration (check-in gating)


@dataclass(slots=True)
class Inputs:
    """Everything one gateway's document is made of."""

    locks: list[SmartLock] = field(default_factory=list)
    codes: list[CodeRow] = field(default_factory=list)
    next_entry: datetime | None = None  # the first code starting beyond the horizon


def load_inputs(
    session: Session, gateways: Sequence[Gateway], now: datetime, horizon_until: datetime
) -> dict[str, Inputs]:
    """The locks and codes of many gateways in three queries, whatever their number."""
    inputs = {gateway.id: Inputs() for gateway in gateways}
    by_property: dict[str, list[Inputs]] = defaultdict(list)
    for gateway in gateways:
        by_property[gateway.property_id].append(inputs[gateway.id])
    for lock in session.scalars(
        select(SmartLock)
        .where(SmartLock.gateway_id.in_(list(inputs)), SmartLock.deleted_at.is_(None))
        .order_by(SmartLock.created_at, SmartLock.id)
    ):
        inputs[lock.gateway_id].locks.append(lock)
    rows = session.execute(
        select(
            AccessCode.id,
            AccessCode.property_id,
            AccessCode.kind,
            AccessCode.pin,
            AccessCode.starts_at,
            AccessCode.ends_at,
            AccessCode.booking_id,
            AccessCode.task_id,
            AccessCode.label,
            Booking.registration_completed_at.is_not(None),
        )
        .outerjoin(Booking, Booking.id == AccessCode.booking_id)
        .where(
            AccessCode.property_id.in_(list(by_property)),
            AccessCode.status == CodeStatus.ACTIVE,
            or_(AccessCode.booking_id.is_(None), Booking.status == BookingStatus.CONFIRMED),
            or_(AccessCode.starts_at.is_(None), AccessCode.starts_at < horizon_until),
            or_(AccessCode.ends_at.is_(None), AccessCode.ends_at > now),
        )
        .order_by(AccessCode.starts_at, AccessCode.id)
    )
    for row in rows:
        code = CodeRow(*row[:9], registered=bool(row[9]))
        for target in by_property[code.property_id]:
            target.codes.append(code)
    next_entries = session.execute(
        select(AccessCode.property_id, func.min(AccessCode.starts_at))
        .where(
            AccessCode.property_id.in_(list(by_property)),
            AccessCode.status == CodeStatus.ACTIVE,
            AccessCode.starts_at >= horizon_until,
        )
        .group_by(AccessCode.property_id)
    )
    for property_id, first in next_entries:
        for target in by_property[property_id]:
            target.next_entry = first
    return inputs


def sign_desired(
    gateway: Gateway,
    inputs: Inputs,
    *,
    now: datetime,
    horizon: timedelta,
    signing_key: SigningKey,
) -> SignedDesired:
    """Sign the next version of a gateway's desired state: its locks and codes in the horizon.

    Every code of the property opens every lock this gateway drives: guest codes (unless held
    back by check-in gating), crew codes of open tasks, permanent manager codes and the backup
    pool. Without locks the document carries no codes, as a code must name the locks it opens.
    """
    if gateway.seal_public_key is None:
        raise ValueError(f"gateway {gateway.id} is not enrolled: no key to seal PINs to")
    recipient = PublicKey(base64.b64decode(gateway.seal_public_key))
    horizon_until = now + horizon
    prop = gateway.property
    lock_ids = tuple(lock.id for lock in inputs.locks)
    codes: list[DesiredCode] = []
    refresh_at = now + horizon / 2  # keep horizon_until well ahead even when nothing changes
    for code in inputs.codes:
        if prop.guest_registration_required and code.kind is CodeKind.GUEST and not code.registered:
            continue  # check-in gating: the code reaches the locks once the guests registered
        if code.ends_at is not None:
            refresh_at = min(refresh_at, code.ends_at)
        if not lock_ids:
            continue
        codes.append(
            DesiredCode(
                id=code.id,
                kind=code.kind,
                pin=seal_pin(code.pin, code.id, recipient),
                starts_at=code.starts_at,
                ends_at=code.ends_at,
                lock_ids=lock_ids,
                booking_id=code.booking_id,
                task_id=code.task_id,
                label=code.label[:LABEL_CHARS],
            )
        )
    if inputs.next_entry is not None:
        refresh_at = min(refresh_at, inputs.next_entry - horizon)
    version = gateway.desired_version + 1
    state = DesiredState(
        gateway_id=gateway.id,
        property_id=gateway.property_id,
        version=version,
        issued_at=now,
        timezone=prop.timezone,
        horizon_until=horizon_until,
        locks=tuple(
            LockSpec(id=lock.id, kind=lock.kind, ref=lock.device_ref, name=lock.name)
            for lock in inputs.locks
        ),
        codes=tuple(codes),
    )
    return SignedDesired(encode_desired(state, signing_key), version, refresh_at, len(codes))


def build_desired(
    session: Session,
    gateway: Gateway,
    *,
    now: datetime,
    horizon: timedelta,
    signing_key: SigningKey,
) -> SignedDesired:
    """Load and sign one gateway's next desired state."""
    inputs = load_inputs(session, [gateway], now, now + horizon)[gateway.id]
    return sign_desired(gateway, inputs, now=now, horizon=horizon, signing_key=signing_key)
