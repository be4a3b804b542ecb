"""Alembic environment: runs on the connection handed over by `cloud_api.db.migrate`."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from cloud_api import models  # noqa: F401 - registers the tables on Base.metadata
from cloud_api.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate on the given connection, or on KASIFY_DATABASE_URL when run by the alembic CLI."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("KASIFY_DATABASE_URL")
    if not url:
        raise SystemExit("set KASIFY_DATABASE_URL to the database to migrate")
    engine = make_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run them online")
run_migrations_online()
