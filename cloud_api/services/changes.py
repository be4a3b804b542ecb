"""Mark gateways whose desired state must be re-signed; the publisher picks them up on commit."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from cloud_api.db import record_changed_gateways
from cloud_api.models import Gateway


def gateways_changed(session: Session, gateway_ids: Iterable[str]) -> None:
    """Flag these gateways (persisted, so a restart still publishes) and announce them on commit."""
    ids = list(gateway_ids)
    if not ids:
        return
    session.execute(update(Gateway).where(Gateway.id.in_(ids)).values(desired_dirty=True))
    record_changed_gateways(session, ids)


def property_changed(session: Session, property_id: str) -> None:
    """Flag every enrolled, live gateway of a property (one statement)."""
    ids = session.scalars(
        update(Gateway)
        .where(
            Gateway.property_id == property_id,
            Gateway.enrolled_at.is_not(None),
            Gateway.deleted_at.is_(None),
        )
        .values(desired_dirty=True)
        .returning(Gateway.id),
        execution_options={"synchronize_session": False},
    ).all()
    record_changed_gateways(session, ids)
