"""Apply a gateway's reported state: lock status, per-code per-lock delivery, and the follow-ups
(a guest code that failed to set gets its booking a backup code)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cloud_api.models import (
    AccessCode,
    Booking,
    BookingStatus,
    CodeDelivery,
    CodeStatus,
    Gateway,
    Property,
    SmartLock,
)
from cloud_api.services.backup_codes import ensure_pool, hand_out
from cloud_api.services.changes import property_changed
from cloud_api.services.events import cloud_event, store_events
from sync_protocol.models import CodeKind, DeliveryState, ReportedState

log = logging.getLogger(__name__)

CHUNK = 2000  # ids per IN (...) list: well under SQLite's bound-parameter limit
EVENT_NAMESPACE = uuid.UUID("6f1d2c4e-8a3b-4e5f-9c7d-0b1a2e3f4d5c")  # deterministic cloud event ids

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class Failure:
    """A code that just failed to set on a lock."""

    code_id: str
    lock_id: str
    error: str | None


def _update_locks(session: Session, gateway: Gateway, state: ReportedState) -> dict[str, SmartLock]:
    locks = {
        lock.id: lock
        for lock in session.scalars(
            select(SmartLock).where(
                SmartLock.gateway_id == gateway.id, SmartLock.deleted_at.is_(None)
            )
        )
    }
    for status in state.locks:
        lock = locks.get(status.lock_id)
        if lock is None:
            continue
        lock.lock_state = status.state
        lock.battery_charge = status.battery_percent
        lock.battery_critical = status.battery_critical
        lock.door_state = status.door
        lock.reachable = status.reachable
        lock.last_seen_at = status.last_seen or lock.last_seen_at
        lock.status_reported_at = state.reported_at
    return locks


def _known_codes(session: Session, property_id: str, code_ids: list[str]) -> set[str]:
    known: set[str] = set()
    for part in chunks(code_ids):
        known.update(
            session.scalars(
                select(AccessCode.id).where(
                    AccessCode.id.in_(part), AccessCode.property_id == property_id
                )
            )
        )
    return known


def _update_deliveries(
    session: Session, gateway: Gateway, state: ReportedState, locks: dict[str, SmartLock]
) -> list[Failure]:
    existing = {
        (row.code_id, row.lock_id): row
        for row in session.scalars(
            select(CodeDelivery).where(CodeDelivery.gateway_id == gateway.id)
        )
    }
    reported = {(c.code_id, c.lock_id): c for c in state.codes if c.lock_id in locks}
    known = _known_codes(session, gateway.property_id, sorted({k[0] for k in reported}))
    at = state.reported_at
    failures: list[Failure] = []
    new_rows: list[dict[str, Any]] = []
    for key, delivery in reported.items():
        if key[0] not in known:
            continue
        row = existing.pop(key, None)
        error = delivery.error
        newly_failed = row is None or row.state is not DeliveryState.FAILED
        if delivery.state is DeliveryState.FAILED and newly_failed:
            failures.append(Failure(key[0], key[1], error))
        if row is None:
            new_rows.append(
                {
                    "code_id": key[0],
                    "lock_id": key[1],
                    "gateway_id": gateway.id,
                    "state": delivery.state,
                    "error": error,
                    "updated_at": at,
                }
            )
        elif row.state is not delivery.state or row.error != error:
            row.state, row.error, row.updated_at = delivery.state, error, at
    for row in existing.values():
        session.delete(row)  # no longer on the lock, nor being worked on: unset
    if new_rows:
        session.execute(insert(CodeDelivery), new_rows)
    return failures


def _event_id(*parts: object) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, "/".join(str(p) for p in parts)))


def _follow_up(
    session: Session, gateway: Gateway, failures: list[Failure], at: datetime
) -> list[dict[str, Any]]:
    """Events for failed codes; a backup code for each booking whose guest code failed."""
    events: list[dict[str, Any]] = []
    codes = {
        c.id: c
        for c in session.scalars(
            select(AccessCode).where(AccessCode.id.in_({f.code_id for f in failures}))
        )
    }
    prop: Property | None = None
    for failure in failures:
        code = codes[failure.code_id]
        events.append(
            cloud_event(
                event_id=_event_id("code_failed", failure.code_id, failure.lock_id, at),
                gateway_id=gateway.id,
                property_id=gateway.property_id,
                type="code_failed",
                at=at,
                lock_id=failure.lock_id,
                code_id=code.id,
                booking_id=code.booking_id,
                details={"error": (failure.error or "")[:200], "kind": code.kind.value},
            )
        )
        if code.status is not CodeStatus.ACTIVE or (code.ends_at and code.ends_at <= at):
            continue
        if prop is None:
            prop = session.scalar(
                select(Property).where(Property.id == gateway.property_id).with_for_update()
            )
            assert prop is not None
        if code.kind is CodeKind.BACKUP and code.booking_id is None:
            code.status, code.revoked_at, code.updated_at = CodeStatus.REVOKED, at, at
            session.flush()
            ensure_pool(session, prop)  # a pool code that does not set is replaced
            property_changed(session, prop.id)
        elif code.kind is CodeKind.GUEST and code.booking_id is not None:
            booking = session.get(Booking, code.booking_id)
            if booking is None or booking.status is not BookingStatus.CONFIRMED:
                continue
            backup = hand_out(session, prop, booking, at, reason=f"guest code {code.id} failed")
            if backup is not None:
                events.append(
                    cloud_event(
                        event_id=_event_id("backup_handed_out", booking.id, backup.id),
                        gateway_id=gateway.id,
                        property_id=prop.id,
                        type="backup_code_handed_out",
                        at=at,
                        code_id=backup.id,
                        booking_id=booking.id,
                        details={"failed_code_id": code.id},
                    )
                )
                property_changed(session, prop.id)
    return events


def _older_than_stored(gateway: Gateway, state: ReportedState) -> bool:
    stored = (gateway.reported_state or {}).get("reported_at")
    if not isinstance(stored, str):
        return False
    try:
        return datetime.fromisoformat(stored) > state.reported_at
    except ValueError:
        return False


def apply_reported(session: Session, gateway: Gateway, state: ReportedState, now: datetime) -> int:
    """Store a reported state; returns how many codes newly failed on a lock.

    Every worker gets every report (retained, plain subscription): the gateway's row is locked
    while one is applied, and a report older than the stored one is ignored, so two workers
    never interleave two reports of one gateway.
    """
    session.flush()
    session.refresh(gateway, with_for_update=True)
    if _older_than_stored(gateway, state):
        log.debug("ignored an older report from gateway %s", gateway.id)
        return 0
    gateway.reported_state = state.model_dump(mode="json", exclude={"codes"})
    gateway.reported_at = now
    gateway.last_seen_at = now
    gateway.agent_version = state.agent_version or gateway.agent_version
    locks = _update_locks(session, gateway, state)
    failures = _update_deliveries(session, gateway, state, locks)
    if failures:
        store_events(session, _follow_up(session, gateway, failures, state.reported_at))
    if state.rejection is not None:
        log.warning(
            "gateway %s rejected desired v%s: %s: %s",
            gateway.id,
            state.rejection.version,
            state.rejection.reason,
            state.rejection.detail,
        )
    return len(failures)
