"""Issue, move and revoke access codes, keeping PINs unique where windows overlap.

Kinds: a guest code per booking (check-in less the early buffer to check-out plus the late
buffer, in the property's zone), a crew code per task (the task's window), permanent manager codes
held by an owner or manager, and a pool of backup codes (see `backup_codes.py`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cloud_api.codes import NoFreePin, code_window, generate_pin, overlaps, pin_problems
from cloud_api.db import NEW_CODES, new_id, utcnow
from cloud_api.errors import Conflict, InvalidInput, NotFound
from cloud_api.models import (
    AccessCode,
    Booking,
    BookingStatus,
    CodeStatus,
    Membership,
    Property,
    Role,
    SmartLock,
    Task,
    User,
)
from cloud_api.services.access import Permission, require_property
from cloud_api.services.changes import property_changed
from sync_protocol.models import CodeKind, LockKind

LABEL_CHARS = 40


def guest_window(prop: Property, booking: Booking) -> tuple[datetime, datetime]:
    """The booking's guest code window in UTC, from the property's times and zone."""
    return code_window(
        timezone=prop.timezone,
        check_in=booking.check_in,
        check_out=booking.check_out,
        check_in_time=prop.check_in_time,
        check_out_time=prop.check_out_time,
        early_minutes=prop.early_buffer_minutes,
        late_minutes=prop.late_buffer_minutes,
    )


def taken_pins(
    session: Session,
    property_id: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
    exclude: Collection[str] = (),
) -> set[str]:
    """PINs of the property's active codes whose windows overlap [starts_at, ends_at)."""
    query = select(AccessCode.pin).where(
        AccessCode.property_id == property_id, AccessCode.status == CodeStatus.ACTIVE
    )
    if exclude:
        query = query.where(AccessCode.id.not_in(list(exclude)))
    if ends_at is not None:
        query = query.where(or_(AccessCode.starts_at.is_(None), AccessCode.starts_at < ends_at))
    if starts_at is not None:
        query = query.where(or_(AccessCode.ends_at.is_(None), AccessCode.ends_at > starts_at))
    return set(session.scalars(query))


def lock_kinds(session: Session, property_id: str) -> set[LockKind]:
    """The kinds of lock a property has (a chosen PIN must suit every one)."""
    return set(
        session.scalars(
            select(SmartLock.kind)
            .where(SmartLock.property_id == property_id, SmartLock.deleted_at.is_(None))
            .distinct()
        )
    )


def choose_pin(
    session: Session,
    prop: Property,
    pin: str | None,
    starts_at: datetime | None,
    ends_at: datetime | None,
    exclude: Collection[str] = (),
) -> str:
    """A generated PIN, or the chosen one if every lock of the property accepts it and it is free.

    Without locks yet, a chosen PIN must suit every kind of lock, so adding one later works.
    """
    taken = taken_pins(session, prop.id, starts_at, ends_at, exclude)
    if pin is None:
        try:
            return generate_pin(taken)
        except NoFreePin as exc:
            raise Conflict(f"cannot find a free PIN at this property: {exc}") from None
    problems = pin_problems(pin, lock_kinds(session, prop.id))
    if problems:
        raise InvalidInput("pin", "breaks the rule " + "; and the rule ".join(problems))
    if pin in taken:
        raise InvalidInput(
            "pin",
            "breaks the rule: unique at the property: another active code uses this PIN in an "
            "overlapping window; choose another PIN or omit it to get a generated one",
        )
    return pin


def new_code(
    session: Session,
    prop: Property,
    kind: CodeKind,
    starts_at: datetime | None,
    ends_at: datetime | None,
    *,
    pin: str | None = None,
    label: str = "",
    booking: Booking | None = None,
    task: Task | None = None,
    holder_user_id: str | None = None,
) -> AccessCode:
    """A new active code with a free PIN (generated unless chosen)."""
    code = AccessCode(
        property_id=prop.id,
        kind=kind,
        pin=choose_pin(session, prop, pin, starts_at, ends_at),
        starts_at=starts_at,
        ends_at=ends_at,
        status=CodeStatus.ACTIVE,
        label=label[:LABEL_CHARS],
        task_id=task.id if task is not None else None,
        holder_user_id=holder_user_id,
    )
    if booking is not None:
        booking.codes.append(code)
    else:
        session.add(code)
    session.flush()
    session.info.setdefault(NEW_CODES, set()).add(code.id)
    return code


def issue_guest_code(
    session: Session, prop: Property, booking: Booking, pin: str | None = None
) -> AccessCode:
    """A new active guest code for the booking's window; a chosen PIN must be free."""
    starts_at, ends_at = guest_window(prop, booking)
    label = booking.guest_name
    return new_code(
        session, prop, CodeKind.GUEST, starts_at, ends_at, pin=pin, booking=booking, label=label
    )


def issue_guest_codes(session: Session, prop: Property, bookings: list[Booking]) -> None:
    """Guest codes for many new bookings of one property: the PINs in use are read once."""
    windows = [guest_window(prop, booking) for booking in bookings]
    in_use = [
        (pin, starts, ends)
        for pin, starts, ends in session.execute(
            select(AccessCode.pin, AccessCode.starts_at, AccessCode.ends_at).where(
                AccessCode.property_id == prop.id,
                AccessCode.status == CodeStatus.ACTIVE,
                or_(
                    AccessCode.starts_at.is_(None),
                    AccessCode.starts_at < max(end for _, end in windows),
                ),
                or_(
                    AccessCode.ends_at.is_(None),
                    AccessCode.ends_at > min(start for start, _ in windows),
                ),
            )
        )
    ]
    new_ids = session.info.setdefault(NEW_CODES, set())
    for booking, (starts_at, ends_at) in zip(bookings, windows, strict=True):
        taken = {pin for pin, s, e in in_use if overlaps(s, e, starts_at, ends_at)}
        try:
            pin = generate_pin(taken)
        except NoFreePin as exc:
            raise Conflict(f"cannot find a free PIN at this property: {exc}") from None
        in_use.append((pin, starts_at, ends_at))
        code = AccessCode(
            id=new_id(),
            property_id=prop.id,
            kind=CodeKind.GUEST,
            pin=pin,
            starts_at=starts_at,
            ends_at=ends_at,
            status=CodeStatus.ACTIVE,
            label=booking.guest_name[:LABEL_CHARS],
        )
        booking.codes.append(code)
        new_ids.add(code.id)


def issue_crew_code(session: Session, prop: Property, task: Task) -> AccessCode:
    """A crew code valid for the task's window, held by its assignee."""
    return new_code(
        session,
        prop,
        CodeKind.CREW,
        task.starts_at,
        task.ends_at,
        task=task,
        label=task.title,
        holder_user_id=task.assigned_to,
    )


def revoke(code: AccessCode, now: datetime) -> None:
    """Revoke one code (idempotent)."""
    if code.status is CodeStatus.REVOKED:
        return
    code.status = CodeStatus.REVOKED
    code.revoked_at = now
    code.updated_at = now


def active_guest_codes(booking: Booking) -> list[AccessCode]:
    """The booking's active guest codes."""
    return [c for c in booking.codes if c.status is CodeStatus.ACTIVE and c.kind is CodeKind.GUEST]


def active_booking_codes(booking: Booking) -> list[AccessCode]:
    """Every active code of a booking: guest codes and a backup code handed out to it."""
    return [c for c in booking.codes if c.status is CodeStatus.ACTIVE]


def rewindow_booking(session: Session, prop: Property, booking: Booking, now: datetime) -> None:
    """Move the booking's codes to its current window; a PIN that now clashes is replaced."""
    starts_at, ends_at = guest_window(prop, booking)
    for code in active_booking_codes(booking):
        if code.kind is CodeKind.BACKUP:
            # Already on the locks: only its end moves (it stays valid from hand-out).
            code.ends_at, code.updated_at = ends_at, now
            continue
        if (code.starts_at, code.ends_at) == (starts_at, ends_at):
            continue
        if code.pin in taken_pins(session, prop.id, starts_at, ends_at, exclude={code.id}):
            revoke(code, now)
            issue_guest_code(session, prop, booking)
            continue
        code.starts_at, code.ends_at, code.updated_at = starts_at, ends_at, now


def rewindow_property(session: Session, prop: Property, now: datetime) -> None:
    """Move every current guest code of the property after its times or zone changed."""
    bookings = session.scalars(
        select(Booking)
        .join(AccessCode, AccessCode.booking_id == Booking.id)
        .where(
            Booking.property_id == prop.id,
            Booking.status == BookingStatus.CONFIRMED,
            AccessCode.status == CodeStatus.ACTIVE,
            or_(AccessCode.ends_at.is_(None), AccessCode.ends_at > now),
        )
        .distinct()
    ).all()
    for booking in bookings:
        rewindow_booking(session, prop, booking, now)


def load_booking(
    session: Session, user: User, booking_id: str, permission: Permission
) -> tuple[Property, Booking]:
    """A booking the caller may act on, with its property; 404 otherwise."""
    booking = session.get(Booking, booking_id)
    message = f"booking {booking_id} not found"
    if booking is None:
        raise NotFound(message)
    prop = require_property(
        session,
        user,
        booking.property_id,
        permission,
        lock=permission is Permission.MANAGE,
        not_found=message,
    )
    return prop, booking


def create_for_booking(
    session: Session,
    user: User,
    booking_id: str,
    pin: str | None,
    replace_existing: bool,
    kind: CodeKind = CodeKind.GUEST,
) -> AccessCode:
    """Issue a new guest code for a booking (by default replacing its active ones), or hand it
    a backup code from the pool (`kind` backup)."""
    from cloud_api.services.backup_codes import hand_out

    prop, booking = load_booking(session, user, booking_id, Permission.MANAGE)
    if booking.status is BookingStatus.CANCELLED:
        raise Conflict(
            f"booking {booking_id} is cancelled; set its status to confirmed to issue codes"
        )
    now = utcnow()
    if kind is CodeKind.BACKUP:
        if pin is not None:
            raise InvalidInput("pin", "a backup code is already on the locks; omit the PIN")
        code = hand_out(session, prop, booking, now, reason="requested by a host")
        if code is None:
            raise Conflict(
                f"property {prop.id} has no backup code left to hand out; raise its "
                "backupCodeCount (PUT /properties/{id}) or issue a new guest code"
            )
    else:
        if kind is not CodeKind.GUEST:
            raise InvalidInput("kind", "a booking gets guest codes or a backup code")
        if replace_existing:
            for old in active_guest_codes(booking):
                revoke(old, now)
            session.flush()
        code = issue_guest_code(session, prop, booking, pin)
    property_changed(session, prop.id)
    session.commit()
    return code


def list_for_booking(session: Session, user: User, booking_id: str) -> list[AccessCode]:
    """Every code of a booking, newest first."""
    _, booking = load_booking(session, user, booking_id, Permission.VIEW)
    return sorted(booking.codes, key=lambda c: (c.created_at, c.id), reverse=True)


def load_code(
    session: Session, user: User, code_id: str, permission: Permission
) -> tuple[Property, AccessCode]:
    """A code the caller may act on, with its property; 404 otherwise."""
    code = session.get(AccessCode, code_id)
    message = f"access code {code_id} not found"
    if code is None:
        raise NotFound(message)
    prop = require_property(session, user, code.property_id, permission, not_found=message)
    return prop, code


def revoke_code(session: Session, user: User, code_id: str) -> AccessCode:
    """Revoke a code so every door stops accepting it; a pool backup code is replaced."""
    from cloud_api.services.backup_codes import ensure_pool

    prop, code = load_code(session, user, code_id, Permission.MANAGE)
    if code.status is not CodeStatus.REVOKED:
        now = utcnow()
        revoke(code, now)
        session.flush()
        if code.kind is CodeKind.BACKUP and code.booking_id is None:
            ensure_pool(session, prop)
        property_changed(session, code.property_id)
    session.commit()
    return code


def create_permanent_code(
    session: Session,
    user: User,
    property_id: str,
    *,
    holder_user_id: str | None,
    label: str,
    pin: str | None,
) -> AccessCode:
    """A permanent manager code held by an owner or manager of the property (the caller by
    default); crew and contractors cannot create or hold one."""
    prop = require_property(session, user, property_id, Permission.MANAGE, lock=True)
    holder = holder_user_id or user.id
    role = session.scalar(
        select(Membership.role).where(
            Membership.user_id == holder, Membership.property_id == prop.id
        )
    )
    if role not in (Role.OWNER, Role.MANAGER):
        raise InvalidInput(
            "holderUserId",
            "a permanent code is held by an owner or manager of this property; list them with "
            f"GET /properties/{prop.id}/members",
        )
    if not label:
        holder_user = session.get(User, holder)
        label = (holder_user.name or holder_user.email) if holder_user else "Manager"
    code = new_code(
        session, prop, CodeKind.MANAGER, None, None, pin=pin, label=label, holder_user_id=holder
    )
    property_changed(session, prop.id)
    session.commit()
    return code


def list_property_codes(
    session: Session,
    user: User,
    property_id: str,
    kind: CodeKind | None,
    status: CodeStatus | None,
    page: int,
    size: int,
) -> tuple[list[AccessCode], int]:
    """A property's codes, newest first, optionally of one kind or status."""
    require_property(session, user, property_id, Permission.VIEW)
    query = select(AccessCode).where(AccessCode.property_id == property_id)
    if kind is not None:
        query = query.where(AccessCode.kind == kind)
    if status is not None:
        query = query.where(AccessCode.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(AccessCode.created_at.desc(), AccessCode.id.desc())
        .offset(page * size)
        .limit(size)
    ).all()
    return list(rows), total


def get_code(session: Session, user: User, code_id: str) -> AccessCode:
    """One code the caller may see."""
    return load_code(session, user, code_id, Permission.VIEW)[1]
