"""Store events idempotently (on their id) and keep each property's event count."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud_api.models import Event, EventCount
from sync_protocol.ids import uuid7

EVENTS: Table = Event.__table__  # type: ignore[assignment]
COUNTS: Table = EventCount.__table__  # type: ignore[assignment]
PG_TYPES = {
    "id": "text",
    "gateway_id": "text",
    "property_id": "text",
    "type": "text",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
    "clock_trusted": "boolean",
    "lock_id": "text",
    "code_id": "text",
    "booking_id": "text",
    "task_id": "text",
    "method": "text",
    "result": "text",
    "details": "json",
}
PG_COLUMNS = tuple(PG_TYPES)
PG_TIMES = tuple(c for c, t in PG_TYPES.items() if t == "timestamptz")
# PostgreSQL: one fixed statement whose only parameter is the whole batch as one JSON document,
# which the server unpacks in C. Binding per-column arrays instead spent most of the ingest's
# CPU in the driver's pure-Python array dumper. Built only from the constant column list above.
PG_INSERT = text(
    f"INSERT INTO events ({', '.join(PG_COLUMNS)}) "  # noqa: S608
    f"SELECT {', '.join(PG_COLUMNS)} FROM json_to_recordset(CAST(:rows AS json)) "
    f"AS t({', '.join(f'{c} {t}' for c, t in PG_TYPES.items())}) "
    "ON CONFLICT (id) DO NOTHING RETURNING property_id"
)


def _utc_iso(value: datetime) -> str:
    if value.tzinfo is UTC:  # what the protocol models and utcnow() give
        return value.isoformat()
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the cloud stores aware UTC datetimes")
    return value.astimezone(UTC).isoformat()


def _pg_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The batch as the JSON document PG_INSERT unpacks (times as ISO 8601 with offset)."""
    return json.dumps(
        [{**row, **{c: _utc_iso(row[c]) for c in PG_TIMES}} for row in rows],
        separators=(",", ":"),
    )


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no idempotent insert for {dialect}")


def insert_ignoring_duplicates(session: Session) -> Insert:
    """INSERT ... ON CONFLICT (id) DO NOTHING RETURNING property_id, for the session's backend.

    Executed with a list of rows it runs as a few multi-row statements (SQLAlchemy's
    "insertmanyvalues"), compiled once and cached: much cheaper than one huge VALUES clause.
    """
    statement: Insert = (
        _insert(session, EVENTS)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(EVENTS.c.property_id, sort_by_parameter_order=False)
    )
    return statement


def store_events(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert events whose ids are new, add them to their properties' counts; return how many.

    The caller commits. Counts are updated in property order, so concurrent workers never wait
    for each other in a cycle.
    """
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        result = session.connection().execute(PG_INSERT, {"rows": _pg_rows(rows)})
    else:
        result = session.connection().execute(insert_ignoring_duplicates(session), list(rows))
    inserted = Counter(result.scalars())
    if inserted:
        statement = _insert(session, COUNTS)
        session.connection().execute(
            statement.on_conflict_do_update(
                index_elements=["property_id"],
                set_={"count": COUNTS.c.count + statement.excluded.count},
            ),
            [{"property_id": pid, "count": n} for pid, n in sorted(inserted.items())],
        )
    return sum(inserted.values())


def cloud_event(
    *,
    gateway_id: str,
    property_id: str,
    type: str,
    at: datetime,
    event_id: str | None = None,
    lock_id: str | None = None,
    code_id: str | None = None,
    booking_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A row for something the cloud itself observed (a gateway going offline, a code that
    failed to set), stored in the same feed as the agents' events."""
    return {
        "id": event_id or uuid7(),
        "gateway_id": gateway_id,
        "property_id": property_id,
        "type": type,
        "occurred_at": at,
        "received_at": at,
        "clock_trusted": True,
        "lock_id": lock_id,
        "code_id": code_id,
        "booking_id": booking_id,
        "task_id": None,
        "method": None,
        "result": None,
        "details": details or {},
    }
